from __future__ import annotations

import numpy as np

from opsa.evaluation.bootstrap import bootstrap_ci, bootstrap_replicates


def binary(n: int, p: float, seed: int) -> list[float]:
    return list((np.random.default_rng(seed).random(n) < p).astype(float))


def test_interval_contains_mean_and_reports_n() -> None:
    values = binary(200, 0.3, 1)
    mean, low, high, n = bootstrap_ci(values, n_boot=500, seed=0)
    assert mean == np.mean(values)
    assert low < mean < high
    assert n == 200


def test_interval_shrinks_with_n() -> None:
    small = bootstrap_ci(binary(50, 0.3, 2), n_boot=500, seed=0)
    large = bootstrap_ci(binary(5000, 0.3, 3), n_boot=500, seed=0)
    assert (large.high - large.low) < (small.high - small.low) / 5


def test_seeded_and_reproducible() -> None:
    values = binary(100, 0.5, 4)
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) != bootstrap_ci(values, seed=8)


def test_constant_values_give_a_point_interval() -> None:
    assert tuple(bootstrap_ci([1.0] * 10)) == (1.0, 1.0, 1.0, 10)


def test_clusters_resample_prompts_not_samples() -> None:
    per_prompt = binary(20, 0.5, 5)
    values = [v for v in per_prompt for _ in range(8)]  # 8 identical samples per prompt
    ids = [f"p{i:02d}" for i in range(20) for _ in range(8)]
    clustered = bootstrap_replicates(values, ids, n_boot=300, seed=3)
    # With equal cluster sizes, resampling clusters is resampling the per-prompt means.
    np.testing.assert_allclose(clustered, bootstrap_replicates(per_prompt, n_boot=300, seed=3))
    naive = bootstrap_ci(values, n_boot=300, seed=3)
    grouped = bootstrap_ci(values, ids, n_boot=300, seed=3)
    assert grouped.mean == naive.mean
    assert (grouped.high - grouped.low) > 2 * (naive.high - naive.low)
    assert grouped.n == 160


def test_clusters_of_unequal_size_weigh_by_size() -> None:
    values, ids = [1.0, 1.0, 1.0, 0.0], ["a", "a", "a", "b"]
    replicates = bootstrap_replicates(values, ids, n_boot=2000, seed=0)
    # Drawing {a, a}, {a, b} or {b, b}: means 1, 3/4 and 0.
    assert set(np.round(replicates, 6)) == {1.0, 0.75, 0.0}
