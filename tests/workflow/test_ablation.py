"""scripts/ablation.sh: an overlay run in a copy of a finished run (the shared smoke run of
conftest.py) plans only what the overlay changes and leaves the reference run as it was."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.workflow.test_reruns import job_counts

ROOT = Path(__file__).resolve().parents[2]
MODEL = "results/models/smollm2-135m/opsa/model.safetensors"


@pytest.mark.slow
def test_an_overlay_in_a_copy_plans_only_the_method_it_changes(
    smoke_clone: Path, tool: Callable
) -> None:
    overlay = {"training": {"methods": ["opsa"], "seeds": [0], "opsa": {"top_k": 32}}}
    (smoke_clone / "topk32.yaml").write_text(yaml.safe_dump(overlay))
    run = tool(["bash", "scripts/ablation.sh", "topk32", "topk32.yaml", "-n"], cwd=smoke_clone)
    jobs = job_counts(run.stdout)
    assert jobs["train"] == 1 and jobs["generate"] == 3, jobs  # OPSA again, and its evaluation
    assert not {"prepare_data", "prepare_model", "score_flip_rate", "offpolicy_pairs"} & set(jobs)
    assert "Params have changed since last execution" in run.stdout

    arm = smoke_clone / "runs/topk32"
    assert (arm / MODEL).stat().st_ino == (smoke_clone / MODEL).stat().st_ino  # hard-linked
    assert not (arm / "results/checkpoints").exists()  # a retrained variant starts afresh
    assert job_counts(tool(["snakemake", "-n"], cwd=smoke_clone).stdout) == {}


def test_without_a_finished_run_it_says_so(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("{}\n")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/ablation.sh"), "x", "x.yaml"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "ablation: no finished run here (results/ and .snakemake/metadata/ are needed)"
    )
    assert not (tmp_path / "runs").exists()
