"""The whole pipeline on the smoke config: real model, real generation, judges, report."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.workflow.test_reruns import job_counts


@pytest.mark.slow
def test_smoke_config_runs_end_to_end(smoke_clone: Path, tool: Callable) -> None:
    """The shared smoke run (conftest.py: every stage of the smoke config, made by `dvc
    repro`), then, as an overlay in a copy of it (scripts/ablation.sh), every jailbreak attack,
    the training-set-size sweep at one share for OPSA and flip rate against outcome (kept out
    of .test/config/config.yaml, which the DVC and SLURM tests run too): only their jobs run.
    The overlay keeps OPSA alone (the smoke run covers off-policy SD, its prefilling attack
    included)."""
    overlay = {
        "training": {"methods": ["opsa"], "seeds": [0]},
        "analysis": {
            "size_sweep": {"enabled": True, "fractions": [0.5], "methods": ["opsa"]},
            "flip_rate_outcome": {"enabled": True},
            "jailbreak": {"attacks": ["prefilling", "templates", "pap", "pair"]},
        },
    }
    (smoke_clone / "e2e.yaml").write_text(yaml.safe_dump(overlay))
    run = tool(["bash", "scripts/ablation.sh", "e2e", "e2e.yaml"], cwd=smoke_clone)
    ran = set(job_counts(run.stdout + run.stderr))
    assert "prepare_data" not in ran and "score_flip_rate" not in ran  # the smoke run's jobs
    tmp_path = smoke_clone / "runs/e2e"
    report = tmp_path / "results/report"
    summary = (report / "summary.md").read_text()
    assert "harmful_compliance" in summary and "over_refusal" in summary
    assert "## Judges: what each safety figure measures" in summary  # the smoke judge: patterns
    assert "**Judge validity:** harmful compliance and jailbreak success" in summary
    assert (report / "safety_vs_reasoning.png").stat().st_size > 10_000
    with (report / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    metrics = {r["metric"] for r in rows}
    assert {"harmful_compliance", "over_refusal", "accuracy"} <= metrics
    trained = {"opsa", "opsa-frac50", "opsa-tfrmiddle", "opsa-tfrlast"}
    assert {r["variant"] for r in rows} == {"base", *trained}
    for row in rows:
        assert float(row["ci_low"]) <= float(row["value"]) <= float(row["ci_high"])
        assert int(row["n"]) > 0
    assert (report / "flip_rates/smollm2-135m.png").stat().st_size > 10_000
    assert (report / "token_divergence/smollm2-135m.png").stat().st_size > 10_000
    assert "## Token-level analysis" in summary and "| opsa |" in summary
    assert (report / "jailbreak/smollm2-135m.png").stat().st_size > 10_000
    assert "## Adaptive jailbreaks" in summary and "| opsa | templates | 3 |" in summary
    assert "| opsa | pap | 3 |" in summary and "| base | pair | 3 |" in summary
    assert (report / "training/smollm2-135m.png").stat().st_size > 10_000
    assert "(training/smollm2-135m.png)" in summary
    assert (report / "size_sweep/smollm2-135m.png").stat().st_size > 10_000
    assert "## Training-set size" in summary and "| opsa | 50% |" in summary
    half = tmp_path / "results/models/smollm2-135m/opsa-frac50/train_config.json"
    assert '"prompt_fraction": 0.5' in half.read_text()
    assert (report / "flip_rate_outcome/smollm2-135m.png").stat().st_size > 10_000
    assert "## Flip rate against outcome" in summary and "| opsa-tfrlast |" in summary
    contexts = tmp_path / "results/contexts/smollm2-135m"
    assert (contexts / "selected.json").is_file() and (contexts / "ranking.csv").is_file()
    # the teachers: measured, gated (overridden in the smoke config), in the report
    teachers = json.loads((contexts / "teachers.json").read_text())
    assert teachers["base"]["n_borderline"] == 4 and len(teachers["candidates"]) >= 12
    assert (report / "teachers/smollm2-135m.png").stat().st_size > 10_000
    assert "## Teachers: is the context worth distilling?" in summary
    if teachers["gate"]["overridden"]:
        assert summary.split("\n")[2].startswith("**Warning (smollm2-135m):** teacher gate")
    assert "teachers" in json.loads((report / "summary.json").read_text())
    opsa = tmp_path / "results/models/smollm2-135m/opsa"
    assert (opsa / "model.safetensors").is_file() and (opsa / "token_diagnostics.json").is_file()
    assert (opsa / "README.md").read_text().startswith("---\nlibrary_name: transformers")
    assert len((opsa / "train_log.jsonl").read_text().splitlines()) == 2  # max_steps: 2
    assert list((tmp_path / "logs").rglob("*.log"))
