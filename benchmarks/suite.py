"""The rows of the benchmark table, the settings they share, and the run that writes them."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.machine import describe
from benchmarks.results import write_result, write_table
from opsa.errors import InputError

log = logging.getLogger(__name__)

# row number -> (name, module with `run(settings) -> dict`)
ROWS: dict[int, tuple[str, str]] = {
    1: ("step-vs-trl", "benchmarks.step_vs_trl"),
    2: ("step-mfu", "benchmarks.step_mfu"),
    3: ("generation", "benchmarks.generation"),
    4: ("divergence-memory", "benchmarks.divergence_memory"),
    5: ("context-search", "benchmarks.context_search"),
    6: ("pipeline-overhead", "benchmarks.pipeline_overhead"),
    7: ("gpu", "benchmarks.gpu"),
    8: ("cost-curve", "benchmarks.cost_curve"),
}
MIN_REPS = 5


@dataclass(frozen=True)
class Settings:
    """What every row shares. `small` shrinks every size to a smoke run (CI: it checks that
    the suite runs and writes well-formed results; its numbers mean nothing)."""

    model_dir: Path
    out_dir: Path
    reps: int = MIN_REPS
    warmup: int = 1
    threads: int = 2
    small: bool = False
    command: str = ""

    def side_log(self, row: int, side: str) -> Path:
        return self.out_dir / "logs" / f"row{row}_{side}.log"


def parse_rows(names: list[str]) -> list[int]:
    """'all', row numbers or row names -> row numbers, in order."""
    if "all" in names:
        return list(ROWS)
    by_name = {name: row for row, (name, _) in ROWS.items()}
    rows = []
    for name in names:
        row = int(name) if name.isdigit() else by_name.get(name)
        if row not in ROWS:
            known = ", ".join(f"{r} ({n})" for r, (n, _) in ROWS.items())
            raise InputError(f"bench: unknown row '{name}' (expected all or one of {known})")
        rows.append(row)
    return rows


def check_reps(settings: Settings, allow_few: bool) -> None:
    if settings.reps < MIN_REPS and not allow_few:
        raise InputError(
            f"bench: --reps {settings.reps}: a comparison takes the median of at least "
            f"{MIN_REPS} repetitions (--allow-few-reps is for CI's smoke run only)"
        )


def run_rows(rows: list[int], settings: Settings) -> list[dict[str, Any]]:
    """Run each row, write its JSON (with the machine it ran on) and the table; print ratios."""
    if not settings.small and rows != [7] and not (settings.model_dir / "config.json").is_file():
        raise InputError(f"bench: --model-dir {settings.model_dir}: no prepared model there")
    results = []
    for row in rows:
        name, module = ROWS[row]
        before = describe()
        result: dict[str, Any] = importlib.import_module(module).run(settings)
        result |= {
            "row": row,
            "name": name,
            "command": settings.command,
            "settings": {"reps": settings.reps, "warmup": settings.warmup,
                         "threads": settings.threads, "small": settings.small},
            "machine": before,
            "load_average_after": describe()["load_average"],
        }  # fmt: skip
        path = write_result(settings.out_dir, result)
        print(f"row {row} {name}: {result.get('ratio_text', '')} -> {path}", flush=True)
        results.append(result)
    write_table(settings.out_dir)
    return results
