"""Repetitions, medians and ratios: warm-up runs are made and thrown away, never reported."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Seconds of each measured repetition (warm-up excluded)."""

    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "median_s": round(self.median, 4),
            "min_s": round(min(self.seconds), 4),
            "max_s": round(max(self.seconds), 4),
            "reps": len(self.seconds),
            "seconds": [round(s, 4) for s in self.seconds],
        }


def repeat(fn: Callable[[], Any], reps: int, warmup: int) -> Timing:
    """Run `fn` `warmup` times unmeasured, then `reps` times measured."""
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return Timing(seconds)


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else float("nan")
