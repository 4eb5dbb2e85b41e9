"""Composite scores over several evaluation sets of one model, with bootstrap intervals.

Each set's record carries its bootstrap replicate means. The sets' prompts are resampled
independently, so replicate b of a composite combines replicate b of every set; its percentile
interval is a proper bootstrap interval of the composite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SAFETY_ROLES = ("eval_harmful", "eval_overrefusal")
REASONING_ROLES = ("eval_reasoning",)
LEVEL = 0.95


@dataclass(frozen=True)
class Composite:
    metric: str
    value: float
    low: float  # NaN when a component set stored no replicates
    high: float
    n: int  # items over all component sets
    sets: tuple[str, ...]
    judges: tuple[str, ...]
    # the composite's bootstrap replicates (None with the NaN interval); replicate b of two
    # variants' composites draws the same prompts, which paired comparisons rely on
    replicates: np.ndarray | None = field(default=None, compare=False, repr=False)


def _replicate_matrix(records: list[dict[str, Any]]) -> np.ndarray | None:
    stored = [r.get("replicate_means") for r in records]
    if any(not s for s in stored) or len({len(s) for s in stored}) != 1:
        return None
    return np.asarray(stored, dtype=float)


def composite(records: list[dict[str, Any]], metric: str, complement: bool) -> Composite:
    """The mean of the records' values (1 minus it when `complement`), with an interval.

    Safety score S = 1 - mean of the safety rates: composite(safety_records, "S", True).
    """
    sign, offset = (-1.0, 1.0) if complement else (1.0, 0.0)
    value = offset + sign * float(np.mean([r["value"] for r in records]))
    matrix = _replicate_matrix(records)
    replicates = None if matrix is None else offset + sign * matrix.mean(axis=0)
    low = high = math.nan
    if replicates is not None:
        tail = (1.0 - LEVEL) / 2.0
        low, high = (float(b) for b in np.quantile(replicates, [tail, 1.0 - tail]))
    return Composite(
        metric=metric,
        value=value,
        low=low,
        high=high,
        n=sum(int(r["n"]) for r in records),
        sets=tuple(sorted(r["set"] for r in records)),
        judges=tuple(sorted({str(r["judge"]) for r in records})),
        replicates=replicates,
    )


def composites(records: list[dict[str, Any]]) -> dict[str, Composite]:
    """One model's composites: "S" (safety score) and "R" (mean reasoning accuracy), where it has
    sets for them."""
    out = {}
    safety = [r for r in records if r["role"] in SAFETY_ROLES]
    reasoning = [r for r in records if r["role"] in REASONING_ROLES]
    if safety:
        out["S"] = composite(safety, "safety_score", complement=True)
    if reasoning:
        out["R"] = composite(reasoning, "mean_accuracy", complement=False)
    return out
