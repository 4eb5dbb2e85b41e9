"""The bad-input suite: each case runs a real entry point (`snakemake` on a config in a
temporary directory, or `python -m opsa <step>` as a rule calls it) and checks the contract:
a non-zero exit, exactly one error line naming the culprit, no traceback, no partial output."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# `opsa <step>: error: ...` from the command line or the config check, also inside the
# `<rule> failed: ...` line the Snakefile's onerror handler prints
ERROR_LINE = re.compile(r"opsa [\w-]+: error: ")


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    bin_dir = str(Path(sys.executable).parent)
    return os.environ | {"PYTHONPATH": path, "PATH": f"{bin_dir}:{os.environ['PATH']}"} | extra


class Run:
    """A finished entry point, and the contract on what it showed on the terminal."""

    def __init__(self, run: subprocess.CompletedProcess[str]) -> None:
        self.returncode = run.returncode
        self.output = run.stdout + run.stderr

    def error(self, *named: str) -> str:
        """Assert a non-zero exit, no traceback and exactly one error line, which names
        everything in `named`; return that line."""
        assert self.returncode != 0, self.output[-2000:]
        assert "Traceback" not in self.output, self.output[-3000:]
        lines = [line for line in self.output.splitlines() if ERROR_LINE.search(line)]
        assert len(lines) == 1, self.output[-3000:]
        for name in named:
            assert name in lines[0], lines[0]
        return lines[0]


@pytest.fixture
def opsa(tmp_path: Path) -> Callable[..., Run]:
    """`python -m opsa --threads 1 <args>` in tmp_path, as a rule runs it."""

    def run(*args: str, **env: str) -> Run:
        command = [sys.executable, "-m", "opsa", "--threads", "1", *args]
        return Run(
            subprocess.run(
                command, cwd=tmp_path, env=_env(**env), capture_output=True, text=True, timeout=300
            )
        )

    return run


@pytest.fixture
def embedded_config() -> dict[str, Any]:
    """A fresh copy of the embedded default config, to break."""
    return copy.deepcopy(yaml.safe_load((ROOT / "config/config.yaml").read_text()))


@pytest.fixture
def snakemake(tmp_path: Path) -> Callable[..., Run]:
    """Snakemake on the project's Snakefile in tmp_path; a config given as a dict becomes
    tmp_path/config/config.yaml (the file the Snakefile's `configfile:` reads), as text it is
    written as it is."""

    def run(config: dict[str, Any] | str | None, *args: str, dry_run: bool = True) -> Run:
        if config is not None:
            text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
            (tmp_path / "config").mkdir(exist_ok=True)
            (tmp_path / "config/config.yaml").write_text(text)
        snakefile = str(ROOT / "workflow/Snakefile")
        command = [sys.executable, "-m", "snakemake", "--snakefile", snakefile]
        command += ["--directory", str(tmp_path), "--cores", "1", *args]
        if dry_run:
            command.append("-n")
        return Run(
            subprocess.run(
                command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600
            )
        )

    return run
