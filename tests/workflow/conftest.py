"""One real smoke run, shared by the rerun and DVC tests: a fresh clone of this repository's
committed HEAD, `dvc init`, the smoke config as config/config.yaml, and `dvc repro`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def command(args: list[str], cwd: Path, timeout: int = 3600) -> subprocess.CompletedProcess[str]:
    """Run a tool of this venv in `cwd`, importing the `opsa` found there; fail on error."""
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(cwd),
    }
    run = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    assert run.returncode == 0, f"{' '.join(args)}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


def smoke_config_with_local_files(clone: Path) -> dict:
    """The smoke config, with one evaluation set and the context grid read from local files
    (copies of the package's own), so editing a local file can be tested."""
    config = yaml.safe_load((clone / ".test/config/config.yaml").read_text())
    inputs = clone / "inputs"
    inputs.mkdir()
    shutil.copy(clone / "opsa/data/builtin/overrefusal.jsonl", inputs / "overrefusal.jsonl")
    shutil.copy(clone / "opsa/contexts/default_grid.yaml", inputs / "grid.yaml")
    config["datasets"]["overrefusal"]["sources"] = [
        {"path": "inputs/overrefusal.jsonl", "name": "overrefusal", "meta_columns": ["category"]}
    ]
    config["contexts"]["candidates"]["grid"] = "inputs/grid.yaml"
    return config


@pytest.fixture(scope="session")
def tool() -> Callable[..., subprocess.CompletedProcess[str]]:
    """`tool(args, cwd)`: run snakemake, dvc or git as the pipeline's user would."""
    return command


@pytest.fixture(scope="session")
def smoke_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone where `dvc repro` has run the smoke pipeline once (a few minutes)."""
    clone = tmp_path_factory.mktemp("dvc") / "opsa"
    command(["git", "clone", "-q", str(ROOT), str(clone)], cwd=ROOT)
    command(["dvc", "init", "-q"], cwd=clone)
    config = smoke_config_with_local_files(clone)
    (clone / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run = command(["dvc", "repro"], cwd=clone)
    assert "Running stage 'report'" in run.stdout, run.stdout[-3000:]
    (clone / "first-repro.log").write_text(run.stdout)
    return clone
