"""Pipeline jobs of every kind through a real one-node SLURM cluster on localhost, with
profiles/slurm.

scripts/slurm-localhost.sh installs slurm-wlm and munge when missing (apt-get), starts munged,
slurmctld and slurmd with two fake GPUs, and stops what it started. Needs root (or
password-less sudo); skipped otherwise, or when a SLURM controller is already answering.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.workflow.test_reruns import job_counts

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/slurm-localhost.sh"
GPU_RULES = {"generate", "train", "score_flip_rate", "offpolicy_pairs"}
CPU_RULES = {"prepare_data", "judge", "evaluate", "report", "grid_report"}


def as_root() -> list[str] | None:
    """The prefix that runs a command as root, or None when there is none."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"]).returncode == 0:
        return ["sudo", "-n", "--preserve-env=SLURM_LOCALHOST_DIR"]
    return None


@pytest.fixture
def slurm_cluster(tmp_path: Path) -> Iterator[Path]:
    root = as_root()
    if root is None:
        pytest.skip("starting SLURM daemons needs root or password-less sudo")
    if shutil.which("sinfo") and subprocess.run(["sinfo"], capture_output=True).returncode == 0:
        pytest.skip("a SLURM controller is already answering; not starting another")
    env = os.environ | {"SLURM_LOCALHOST_DIR": str(tmp_path / "slurm")}
    try:
        start = subprocess.run(
            [*root, "bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True
        )
        assert start.returncode == 0, start.stderr[-2000:]
        yield tmp_path / "slurm"
    finally:
        subprocess.run([*root, "bash", str(SCRIPT), "stop"], env=env, capture_output=True)


def slurm_jobs() -> list[dict[str, str]]:
    """Every job the controller still knows (MinJobAge keeps finished ones for an hour)."""
    out = subprocess.run(
        ["scontrol", "-o", "show", "job"], capture_output=True, text=True, check=True
    ).stdout
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines() if line]


# Slurm options for this one-node cluster, where it differs from the profile's placeholders:
# its partition, no accounting, two cores.
SLURM_OPTIONS = [
    "--profile", "profiles/slurm",
    "--default-resources", "slurm_partition=debug", "mem_mb=1000", "runtime=30",
    "--slurm-no-account", "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "5", "--max-threads", "1",
]  # fmt: skip
# In a copy of the shared smoke run (scripts/ablation.sh): off-policy SD sampled again (its
# pairs, training, generation, judging and evaluation) and one evaluation set resized (its
# preparation, and every variant's generation on it); the analyses are not run again.
OVERLAY = {
    "training": {
        "methods": ["opsa", "offpolicy_sd"],
        "seeds": [0],
        "offpolicy": {"sampling": {"max_new_tokens": 20}},
    },
    "datasets": {"arithmetic": {"n": 6}},
    "analysis": {"jailbreak": {"enabled": False}, "token_divergence": {"enabled": False}},
}


@pytest.mark.slow
def test_jobs_of_every_kind_run_through_sbatch_with_the_profile(
    slurm_cluster: Path, smoke_clone: Path, tool: Callable
) -> None:
    (smoke_clone / "slurm.yaml").write_text(yaml.safe_dump(OVERLAY))
    ablation = ["bash", "scripts/ablation.sh", "slurm", "slurm.yaml", *SLURM_OPTIONS]
    run = tool(ablation, cwd=smoke_clone)
    # and the context search's scoring, alone (it would otherwise retrain everything)
    scoring = tool([*ablation, "--forcerun", "score_flip_rate", "--until", "score_flip_rate"],
                   cwd=smoke_clone)  # fmt: skip
    planned = job_counts(run.stdout + run.stderr)
    assert planned["train"] == planned["offpolicy_pairs"] == planned["prepare_data"] == 1, planned
    scored = job_counts(scoring.stdout + scoring.stderr)
    assert scored == {"score_flip_rate": 2}

    work = smoke_clone / "runs/slurm"
    report = work / "results/report"
    assert "harmful_compliance" in (report / "summary.md").read_text()
    assert "| smollm2-135m | 1 |" in (report / "grid.md").read_text()
    sd = work / "results/models/smollm2-135m/offpolicy_sd/model.safetensors"
    assert sd.stat().st_ino != (smoke_clone / sd.relative_to(work)).stat().st_ino  # retrained

    jobs = slurm_jobs()
    rules = {j["Comment"].split("_wildcards")[0].removeprefix("rule_"): j for j in jobs}
    assert GPU_RULES | CPU_RULES <= set(rules), sorted(rules)
    assert all(j["JobState"] == "COMPLETED" for j in jobs)
    assert all(j["Partition"] == "debug" for j in jobs)
    for rule in GPU_RULES:
        assert rules[rule].get("TresPerJob") == "gres:gpu:1", (rule, rules[rule])
    for rule in CPU_RULES:  # the smoke config's judge is a pattern judge: no GPU
        assert "gpu" not in rules[rule].get("TresPerJob", ""), (rule, rules[rule])
    assert len(jobs) == sum(planned.values()) + sum(scored.values())  # all but the local `all`
