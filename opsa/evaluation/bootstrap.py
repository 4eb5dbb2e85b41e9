"""Percentile bootstrap intervals for a mean, resampling prompts when there are several samples
per prompt (a cluster bootstrap), so that repeated samples of one prompt do not narrow the
interval as if they were independent.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class Interval(NamedTuple):
    mean: float
    low: float
    high: float
    n: int


def stable_seed(seed: int, name: str) -> list[int]:
    """A seed for `name` that does not depend on Python's hash randomisation.

    Each evaluation set gets its own stream, so the replicates of different sets are independent,
    while the same set under two models is resampled the same way (a paired comparison).
    """
    return [seed, zlib.crc32(name.encode("utf-8"))]


def bootstrap_replicates(
    values: Sequence[float],
    ids: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int | list[int] = 0,
) -> np.ndarray:
    """`n_boot` bootstrap means of `values`; with `ids`, whole clusters of equal ids are resampled.

    Each replicate draws as many clusters as there are, with replacement, and takes the mean over
    all their values (so clusters of different sizes are weighted by their size, as in the point
    estimate).
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap of an empty set of values")
    keys = np.arange(x.size) if ids is None else np.unique(np.asarray(ids), return_inverse=True)[1]
    if len(keys) != x.size:
        raise ValueError(f"{x.size} values but {len(keys)} ids")
    sums = np.bincount(keys, weights=x)
    counts = np.bincount(keys).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, sums.size, size=(n_boot, sums.size))
    return sums[draws].sum(axis=1) / counts[draws].sum(axis=1)


def percentile_interval(
    estimate: float, replicates: np.ndarray, n: int, level: float = 0.95
) -> Interval:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return Interval(float(estimate), float(low), float(high), n)


def bootstrap_ci(
    values: Sequence[float],
    ids: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int | list[int] = 0,
    level: float = 0.95,
) -> Interval:
    """The mean of `values` with a percentile bootstrap interval: (mean, low, high, n)."""
    replicates = bootstrap_replicates(values, ids, n_boot, seed)
    return percentile_interval(float(np.mean(values)), replicates, len(values), level)
