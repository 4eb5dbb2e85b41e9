"""The per-step training log (JSONL in work_dir, copied to out_dir when the run completes)."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import torch

from opsa.records import read_jsonl, write_jsonl


def peak_memory_mb() -> float:
    """Peak accelerator memory since the last reset, or the process's peak resident memory
    (a high-water mark over the whole run) on CPU."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def truncate_log(path: Path, last_step: int) -> None:
    """Drop rows logged after `last_step` (steps redone after a resume)."""
    if path.is_file():
        write_jsonl(path, [r for r in read_jsonl(path) if r["step"] <= last_step])


def append_row(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
