"""The smoke pipeline through a real one-node SLURM cluster on localhost, with profiles/slurm.

scripts/slurm-localhost.sh installs slurm-wlm and munge when missing (apt-get), starts munged,
slurmctld and slurmd with two fake GPUs, and stops what it started. Needs root (or
password-less sudo); skipped otherwise, or when a SLURM controller is already answering.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

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


@pytest.mark.slow
def test_smoke_pipeline_runs_through_sbatch_with_the_profile(
    slurm_cluster: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    # the smoke config without its analyses: they add jobs, not SLURM mechanics
    config = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    config["analysis"]["jailbreak"]["enabled"] = False
    config["analysis"]["token_divergence"]["enabled"] = False
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    run = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "--profile", str(ROOT / "profiles/slurm"),
            "--snakefile", str(ROOT / "workflow/Snakefile"), "--directory", str(work),
            "--configfile", str(tmp_path / "config.yaml"), "--replace-workflow-config",
            # what this one-node cluster differs in from the profile's placeholders: its
            # partition, no accounting, two cores
            "--default-resources", "slurm_partition=debug", "mem_mb=1000", "runtime=30",
            "--slurm-no-account", "--slurm-status-command", "squeue",
            "--slurm-init-seconds-before-status-checks", "5", "--max-threads", "1",
        ],
        capture_output=True, text=True, env=env, timeout=1500,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]

    report = work / "results/report"
    assert "harmful_compliance" in (report / "summary.md").read_text()
    assert "| smollm2-135m | 1 |" in (report / "grid.md").read_text()
    assert (work / "results/models/smollm2-135m/opsa/model.safetensors").is_file()

    jobs = slurm_jobs()
    rules = {j["Comment"].split("_wildcards")[0].removeprefix("rule_"): j for j in jobs}
    assert GPU_RULES | CPU_RULES <= set(rules), sorted(rules)
    assert all(j["JobState"] == "COMPLETED" for j in jobs)
    assert all(j["Partition"] == "debug" for j in jobs)
    for rule in GPU_RULES:
        assert rules[rule].get("TresPerJob") == "gres:gpu:1", (rule, rules[rule])
    for rule in CPU_RULES:  # the smoke config's judge is a pattern judge: no GPU
        assert "gpu" not in rules[rule].get("TresPerJob", ""), (rule, rules[rule])
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", run.stderr)
    assert done and len(jobs) == int(done[-1][1]) - 1  # every job but the local `all`
