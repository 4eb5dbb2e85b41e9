"""`dvc repro` over the Snakemake workflow, in a fresh clone with the smoke config: it runs
everything once, then only what changed; push and pull restore the trained checkpoints."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

STAGES = {"prepare_data", "train", "generate", "judge", "evaluate", "report"}


def stages_run(output: str) -> set[str]:
    """The stages a `dvc repro` ran."""
    return set(re.findall(r"Running stage '([\w@.-]+)'", output))


def digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.slow
def test_the_first_repro_runs_every_stage(smoke_clone: Path) -> None:
    assert stages_run((smoke_clone / "first-repro.log").read_text()) == STAGES


@pytest.mark.slow
def test_a_second_repro_does_nothing(smoke_clone: Path, tool: Callable) -> None:
    run = tool(["dvc", "repro"], cwd=smoke_clone)
    assert stages_run(run.stdout) == set(), run.stdout
    assert "up to date" in tool(["dvc", "status"], cwd=smoke_clone).stdout


@pytest.mark.slow
def test_an_evaluation_parameter_reruns_evaluation_and_report_only(
    smoke_clone: Path, tool: Callable
) -> None:
    config_file = smoke_clone / "config/config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["evaluation"]["bootstrap"] += 100
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    run = tool(["dvc", "repro"], cwd=smoke_clone)
    assert stages_run(run.stdout) == {"evaluate", "report"}, run.stdout

    metrics = json.loads(tool(["dvc", "metrics", "show", "--json"], cwd=smoke_clone).stdout)
    summary = metrics[""]["data"]["results/report/summary.json"]["data"]
    assert set(summary["smollm2-135m"]) == {"base", "opsa", "offpolicy_sd"}
    plots = tool(["dvc", "plots", "show", "-o", "plots"], cwd=smoke_clone)
    html = (smoke_clone / "plots/index.html").read_text()
    assert "safety_vs_reasoning.png" in html and "flip_rates" in html, plots.stdout


@pytest.mark.slow
def test_pull_restores_checkpoints_and_snakemake_plans_nothing(
    smoke_clone: Path, tool: Callable, tmp_path: Path
) -> None:
    tool(["dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")], cwd=smoke_clone)
    tool(["dvc", "push"], cwd=smoke_clone)
    models = smoke_clone / "results/models/smollm2-135m"
    before = digests(models)
    assert {"base/model.safetensors", "opsa/model.safetensors"} <= set(before)

    shutil.rmtree(smoke_clone / "results")
    shutil.rmtree(smoke_clone / ".dvc/cache")
    tool(["dvc", "pull"], cwd=smoke_clone)

    assert digests(models) == before
    # restored files get fresh timestamps in no order: mark them up to date (docs/running.md, DVC)
    tool(["snakemake", "--touch", "--cores", "1"], cwd=smoke_clone)
    assert digests(models) == before
    plan = tool(["snakemake", "-n"], cwd=smoke_clone)
    assert "Nothing to be done" in plan.stdout, plan.stdout[-3000:]
    assert stages_run(tool(["dvc", "repro"], cwd=smoke_clone).stdout) == set()


@pytest.mark.slow
def test_a_tampered_remote_file_is_refused(smoke_clone: Path, tmp_path: Path, tool: Callable):
    """With the remote's `verify` on (docs/running.md), a file changed in place on the remote
    (same content-hash name) is not restored: the pull fails naming it."""
    remote = tmp_path / "remote"
    tool(["dvc", "remote", "add", "-f", "-d", "checked", str(remote)], cwd=smoke_clone)
    tool(["dvc", "remote", "modify", "checked", "verify", "true"], cwd=smoke_clone)
    tool(["dvc", "push"], cwd=smoke_clone)
    summary = smoke_clone / "results/report/summary.md"
    good = summary.read_bytes()
    digest = hashlib.md5(good).hexdigest()
    (remote / "files/md5" / digest[:2] / digest[2:]).write_bytes(b"tampered\n")
    (smoke_clone / ".dvc/cache/files/md5" / digest[:2] / digest[2:]).unlink()
    summary.unlink()
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    pulled = subprocess.run(
        ["dvc", "pull"], cwd=smoke_clone, capture_output=True, text=True, env=env, timeout=600
    )
    assert pulled.returncode != 0, pulled.stdout[-2000:]
    assert "results/report/summary.md" in pulled.stdout + pulled.stderr
    assert not summary.exists()  # the tampered bytes never reach the workspace
    summary.write_bytes(good)  # a final output: nothing reads it
