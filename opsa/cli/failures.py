"""The one-line cause of each failed job, read from its log, for the Snakefile's `onerror:`.

Every rule sends its command's output to its log, so a failing step's one line
(`opsa <step>: error: ...`) would otherwise be seen only there. After a failed run this
prints one line per failed job on the terminal: the rule, the cause and the log to read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

TAIL_BYTES = 65536


KILLED = (
    "no error line: killed from outside without a chance to say so (the out-of-memory "
    "killer, kill -9, a node lost); its last output: "
)


def cause(log: Path) -> str | None:
    """The log's last `opsa <step>: error:` line; else, after a traceback, its last line (the
    exception); else the step was killed where it could not report (SIGKILL), and the last
    thing it said is given as such."""
    if not log.is_file():
        return None
    with log.open("rb") as f:
        f.seek(max(0, log.stat().st_size - TAIL_BYTES))
        text = f.read().decode("utf-8", errors="replace")
    lines = [line.rsplit("\r", 1)[-1].strip() for line in text.splitlines()]  # progress bars
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.startswith("opsa ") and ": error: " in line]
    if errors:
        return errors[-1]
    if not lines:
        return None
    crashed = any(line.startswith("Traceback (most recent call last)") for line in lines)
    return lines[-1] if crashed else KILLED + lines[-1]


def print_failed_jobs(jobs: Iterable[Any], stream: TextIO = sys.stderr) -> None:
    """One line per failed Snakemake job (`rule.name` and `log` as Snakemake's jobs have)."""
    for job in jobs:
        logs = [Path(log) for log in job.log] or [None]
        for log in logs:
            line = cause(log) if log else None
            where = f" (log: {log})" if log else ""
            print(f"{job.rule.name} failed: {line or 'no log output'}{where}", file=stream)
