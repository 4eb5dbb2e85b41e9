"""The workflow passes the checks the snakemake-workflows standard asks for: snakefmt's
formatting and Snakemake's own linter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_rule_files_are_snakefmt_formatted() -> None:
    done = run(sys.executable, "-m", "snakefmt", "--check", "workflow")
    assert done.returncode == 0, done.stdout + done.stderr


def test_snakemake_lint_finds_nothing() -> None:
    done = run(sys.executable, "-m", "snakemake", "--lint")
    assert done.returncode == 0 and "Congratulations" in done.stdout + done.stderr, (
        done.stdout + done.stderr
    )


def test_common_smk_only_wires() -> None:
    """Config questions live in opsa.config, paths in opsa.layout, targets in opsa.plan."""
    assert len((ROOT / "workflow/rules/common.smk").read_text().splitlines()) <= 200
