"""The workflow itself: configs validate, the paper grid and the smoke test plan, the linter
and snakefmt are clean, common.smk only wires."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_paper_config_plans_the_full_grid() -> None:
    run = snakemake("-n", "--configfile", "config/paper.yaml", "--replace-workflow-config")
    assert run.returncode == 0, run.stderr[-2000:]
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    policies = paper["policies"]
    evals = [n for n, d in paper["datasets"].items() if d["role"].startswith("eval_")]
    for model in policies:
        for dataset in evals:
            assert f"results/eval/{model}/base/{dataset}.json" in run.stdout
    assert "smollm2" not in run.stdout  # the embedded config is replaced, not merged


def test_lint_is_clean() -> None:
    run = snakemake("--lint")
    assert run.returncode == 0, run.stdout[-2000:]
    assert "Congratulations" in run.stdout + run.stderr


def test_rule_files_are_snakefmt_formatted() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "workflow"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_common_smk_only_wires() -> None:
    """Config questions live in opsa.config, paths in opsa.layout, targets in opsa.plan."""
    assert len((ROOT / "workflow/rules/common.smk").read_text().splitlines()) <= 200


def test_the_smoke_test_plans_from_its_own_folder() -> None:
    """`snakemake --cores all --directory .test`, as the README gives it, finds the workflow and
    .test/config/config.yaml."""
    run = snakemake("-n", "--cores", "2", "--directory", ".test")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Config file(s): ['config/config.yaml']" in run.stdout + run.stderr
    assert "results/eval/smollm2-135m/opsa/" in run.stdout


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("bogus_key=1", "bogus_key"),
        ("seed=notanumber", "notanumber"),
    ],
)
def test_schema_rejects_bad_config_naming_the_key(override: str, named: str) -> None:
    run = snakemake("-n", "--config", override)
    assert run.returncode != 0
    assert named in run.stderr + run.stdout


def test_schema_rejects_unknown_nested_key(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config["generation"]["safety"]["temprature"] = 0.5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    run = snakemake("-n", "--configfile", str(bad), "--replace-workflow-config")
    assert run.returncode != 0
    assert "temprature" in run.stderr + run.stdout


def test_every_rule_has_a_log() -> None:
    for rules in (ROOT / "workflow/rules").glob("*.smk"):
        text = rules.read_text()
        rules_defined = re.findall(
            r"^(?:(?:rule|checkpoint) \w+|use rule \w+ as \w+ with):", text, flags=re.M
        )
        assert len(rules_defined) == text.count("\n    log:\n"), rules


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_no_results_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "results", "logs"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert tracked == ""


def test_a_trained_variant_is_evaluated_with_its_training_seed(tmp_path: Path) -> None:
    """The report pairs variants by the seed their evaluation records carry: the first seed (0,
    a falsy value) is passed too, and the base model has none. SafeSteer alone trains without
    the context checkpoint, so a dry run plans its evaluations."""
    config = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    config["training"]["methods"] = ["safesteer"]
    config["training"]["seeds"] = [0, 2]
    config["training"]["common"].pop("seed", None)
    path = tmp_path / "safesteer.yaml"
    path.write_text(yaml.safe_dump(config))
    run = snakemake(
        "-n", "-p", "--cores", "2", "--configfile", str(path), "--replace-workflow-config",
        "--directory", str(tmp_path), "--snakefile", str(ROOT / "workflow/Snakefile"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    commands = [line for line in run.stdout.splitlines() if " evaluate --role " in line]
    named = {v: [c for c in commands if f"--variant {v} " in c] for v in ("base", "safesteer")}
    named["seed2"] = [c for c in commands if "--variant safesteer-seed2 " in c]
    assert named["safesteer"] and all("--training-seed 0 " in c for c in named["safesteer"])
    assert named["seed2"] and all("--training-seed 2 " in c for c in named["seed2"])
    assert named["base"] and not any("--training-seed" in c for c in named["base"])
