"""Paired comparisons of each trained method against a baseline method, seed by seed.

Every evaluation set is resampled with a stream of its own (opsa.evaluation.bootstrap), the
same under every variant, so replicate b of a set draws the same prompts for every variant of a
model. The difference of two variants' replicate b is then a paired bootstrap replicate of the
difference: it keeps what the two share (the prompts) out of the interval. For each model,
method and training seed the report gives the difference of S (and of each set's rate, and of
R) with its paired 95% interval; across seeds, the mean difference with its paired interval
(replicate b averaged over the seeds) and the Student-t interval across seeds, which is what
training noise adds.

Variants are paired by the training seed their evaluation records carry; the variants of a
size sweep or a flip-rate rank are left to their own analyses.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from opsa.errors import InputError
from opsa.layout import Variant
from opsa.records import atomic_path
from opsa.report.composite import LEVEL, composites
from opsa.report.evaluations import Record
from opsa.report.grid import seed_interval, training_seed

FIRST = ("S", "R")  # listed before the sets' own rates


@dataclass(frozen=True)
class Difference:
    """quantity(method) − quantity(baseline), in points, for one model and one seed (or the
    mean over seeds, `seed` None)."""

    model: str
    method: str
    quantity: str  # "S", "R" or a set name (its rate: harmful compliance, over-refusal, ...)
    seed: int | None
    value: float
    low: float  # paired bootstrap interval
    high: float
    share_below_zero: float  # share of paired replicates with a difference below 0
    seed_low: float = math.nan  # Student-t interval across seeds (mean rows, ≥ 2 seeds)
    seed_high: float = math.nan


def quantity_replicates(records: list[Record]) -> dict[str, tuple[float, np.ndarray]]:
    """One variant's quantities with their replicates: each set's own value, S and R."""
    out = {r["set"]: (float(r["value"]), np.asarray(r["replicate_means"], float)) for r in records}
    for name, c in composites(records).items():
        assert c.replicates is not None  # check_pairable found every set's replicates
        out[name] = (c.value, c.replicates)
    return out


def check_pairable(a: list[Record], b: list[Record], where: str) -> None:
    """Same sets, same prompts counted, same bootstrap draws: otherwise replicate b of one
    variant is not replicate b of the other."""
    index = {r["set"]: r for r in b}
    if {r["set"] for r in a} != set(index):
        raise InputError(
            f"paired comparison {where}: the two variants were evaluated on different sets"
        )
    for r in a:
        other = index[r["set"]]
        if not r.get("replicate_means") or not other.get("replicate_means"):
            raise InputError(f"paired comparison {where}: set '{r['set']}' stored no replicates")
        same = (r.get("n_prompts"), r.get("bootstrap")) == (
            other.get("n_prompts"),
            other.get("bootstrap"),
        )
        if not same or len(r["replicate_means"]) != len(other["replicate_means"]):
            raise InputError(
                f"paired comparison {where}: set '{r['set']}' was not resampled the same way for "
                "both variants (prompt count or bootstrap settings differ)"
            )


def interval(replicates: np.ndarray) -> tuple[float, float, float]:
    tail = (1.0 - LEVEL) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return 100 * float(low), 100 * float(high), float(np.mean(replicates < 0))


def model_differences(
    by_seed: dict[tuple[str, int], list[Record]], model: str, method: str, baseline: str
) -> list[Difference]:
    """Per seed and, with two seeds or more, over the seeds, per quantity: method − baseline."""
    seeds = sorted(s for (m, s) in by_seed if m == method and (baseline, s) in by_seed)
    per_seed: dict[str, dict[int, tuple[float, np.ndarray]]] = defaultdict(dict)
    for s in seeds:
        ours, theirs = by_seed[(method, s)], by_seed[(baseline, s)]
        check_pairable(ours, theirs, f"{model}: {method} against {baseline}, seed {s}")
        a, b = quantity_replicates(ours), quantity_replicates(theirs)
        for name in a:
            per_seed[name][s] = (a[name][0] - b[name][0], a[name][1] - b[name][1])
    out = []
    for name, values in per_seed.items():
        for s, (value, reps) in values.items():
            out.append(Difference(model, method, name, s, 100 * value, *interval(reps)))
        if len(values) < 2:
            continue  # one seed: its row is the whole comparison
        mean, seed_low, seed_high = seed_interval([100 * v for v, _ in values.values()])
        pooled = np.mean([reps for _, reps in values.values()], axis=0)
        out.append(
            Difference(model, method, name, None, mean, *interval(pooled), seed_low, seed_high)
        )
    return out


def paired_differences(records: list[Record], baseline: str) -> list[Difference]:
    """Every method trained beside `baseline` (same model, same seed) against it."""
    grouped: dict[str, dict[tuple[str, int], list[Record]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        variant = Variant.parse(r["variant"])
        if not variant.is_base and variant.fraction is None and variant.tfr is None:
            grouped[r["model"]][(variant.method, training_seed(r))].append(r)
    out = []
    for model, by_seed in sorted(grouped.items()):
        methods = sorted({m for (m, _) in by_seed if m != baseline})
        for method in methods:
            out += model_differences(by_seed, model, method, baseline)
    return out


def points(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:+.1f}"


def markdown_section(differences: list[Difference], baseline: str) -> str:
    """summary.md's section: per model and method, each quantity's difference seed by seed and
    over the seeds."""
    if not differences:
        return ""
    lines = [
        "",
        f"## Paired comparisons against {baseline}",
        "",
        f"Difference method − {baseline} in points, on the same prompts: a paired bootstrap "
        "95% interval (both variants' replicates draw the same prompts), and the share of "
        "replicates below zero. Over seeds: the mean, its paired interval, and the Student-t "
        "interval across seeds (training noise). S: higher is safer; a harmful set's rate is "
        "harmful compliance and an over-refusal set's is over-refusal (lower is better).",
        "",
        "| model | method | quantity | seed | difference [paired 95% CI] | below 0 "
        "| across seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    order = {q: k for k, q in enumerate(FIRST)}
    ranked = sorted(
        differences,
        key=lambda d: (
            d.model,
            d.method,
            order.get(d.quantity, -1),
            d.quantity,
            d.seed is None,
            d.seed or 0,
        ),
    )
    for d in ranked:
        seed = "mean" if d.seed is None else str(d.seed)
        spread = "–" if math.isnan(d.seed_low) else f"[{points(d.seed_low)}, {points(d.seed_high)}]"
        lines.append(
            f"| {d.model} | {d.method} | {d.quantity} | {seed} | {points(d.value)} "
            f"[{points(d.low)}, {points(d.high)}] | {100 * d.share_below_zero:.1f}% | {spread} |"
        )
    return "\n".join(lines) + "\n"


def write_csv(path: Path, differences: list[Difference]) -> None:
    fields = list(Difference.__dataclass_fields__)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(fields)
        for d in differences:
            writer.writerow(["" if v is None else v for v in (getattr(d, k) for k in fields)])
