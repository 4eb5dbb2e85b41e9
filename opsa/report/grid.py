"""The grid report: per model, the composite gain of one method over a baseline across seeds.

Each trained variant's evaluation records carry its training seed. For each model and seed
the gain is S(method) − S(baseline) in points (S = 1 − mean of the safety rates,
opsa.report.composite); across seeds the report gives the mean and a 95% Student-t interval,
beside a published gain.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from opsa.errors import InputError
from opsa.layout import Variant
from opsa.records import atomic_path
from opsa.report.composite import composites
from opsa.report.evaluations import Record, read_evaluations

LEVEL = 0.95


@dataclass(frozen=True)
class Gain:
    """One composite's gain of `method` over `baseline` for one model, in points."""

    model: str
    composite: str  # "S" or "R"
    per_seed: dict[int, float]  # training seed -> gain
    mean: float
    low: float  # NaN with fewer than two seeds
    high: float
    published: float | None


def training_seed(record: Record) -> int:
    """The training seed of a trained variant's evaluation record."""
    if "training_seed" not in record:
        raise InputError(
            f"evaluation of {record['model']}/{record['variant']}/{record['set']}: no "
            "training_seed (rerun its evaluate step)"
        )
    return int(record["training_seed"])


def t_quantile(p: float, df: int, steps: int = 2000) -> float:
    """The p-quantile (p > 0.5) of Student's t with `df` degrees of freedom: the CDF by
    Simpson's rule on the density, inverted by bisection (accurate to ~1e-9 here)."""
    scale = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def cdf(x: float) -> float:
        h = x / steps
        ys = [scale * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2) for i in range(steps + 1)]
        return 0.5 + h / 3 * (ys[0] + ys[-1] + 4 * sum(ys[1:-1:2]) + 2 * sum(ys[2:-1:2]))

    low, high = 0.0, 1000.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < p else (low, mid)
    return (low + high) / 2


def seed_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval over seeds (NaN bounds with fewer than two)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = t_quantile(0.5 + LEVEL / 2, len(values) - 1) * statistics.stdev(values)
    half /= math.sqrt(len(values))
    return mean, mean - half, mean + half


def composite_values(records: list[Record]) -> dict[tuple[str, str, int], dict[str, float]]:
    """(model, method, seed) -> {"S": ..., "R": ...} for every variant."""
    grouped: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        grouped[(r["model"], r["variant"])].append(r)
    out = {}
    for (model, variant), group in grouped.items():
        parsed = Variant.parse(variant)
        method = Variant(parsed.method, fraction=parsed.fraction, tfr=parsed.tfr).name
        seed = -1 if parsed.is_base else training_seed(group[0])
        out[(model, method, seed)] = {k: c.value for k, c in composites(group).items()}
    return out


def model_gains(
    values: dict[tuple[str, str, int], dict[str, float]],
    model: str,
    method: str,
    baseline: str,
    published: float | None,
) -> list[Gain]:
    seeds = sorted(s for (m, meth, s) in values if m == model and meth == method)
    missing = [s for s in seeds if (model, baseline, s) not in values]
    if missing:
        raise InputError(f"grid report: {model}: no '{baseline}' evaluation for seed {missing[0]}")
    gains = []
    for name in ("S", "R"):
        per_seed = {
            s: 100 * (values[(model, method, s)][name] - values[(model, baseline, s)][name])
            for s in seeds
            if name in values[(model, method, s)] and name in values[(model, baseline, s)]
        }
        if per_seed:
            mean, low, high = seed_interval(list(per_seed.values()))
            gains.append(Gain(model, name, per_seed, mean, low, high, published))
    return gains


def grid_gains(
    records: list[Record],
    method: str,
    baseline: str,
    published: dict[str, float],
) -> list[Gain]:
    values = composite_values(records)
    models = sorted({m for (m, meth, _) in values if meth == method})
    if not models:
        raise InputError(f"grid report: no evaluation of a '{method}' variant")
    gains = []
    for model in models:
        gains += model_gains(values, model, method, baseline, published.get(model))
    return gains


def verdict(gain: Gain) -> str:
    """Whether the published gain lies in the interval across seeds."""
    if gain.published is None:
        return "–"
    if math.isnan(gain.low):
        return "needs ≥ 2 seeds"
    return "yes" if gain.low <= gain.published <= gain.high else "no"


def points(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:+.2f}"


def markdown(gains: list[Gain], method: str, baseline: str, source: str) -> str:
    lines = [
        f"# {method} against {baseline}, per model",
        "",
        f"Gain = S({method}) − S({baseline}) in points, S = 1 − mean of the safety rates; "
        "mean over training seeds with a 95% Student-t interval across seeds.",
        "",
        "| model | seeds | safety gain S [95% CI] | per seed | published | "
        "published in CI | reasoning gain R |",
        "|---|---|---|---|---|---|---|",
    ]
    reasoning = {g.model: g for g in gains if g.composite == "R"}
    for g in (g for g in gains if g.composite == "S"):
        interval = "" if math.isnan(g.low) else f" [{points(g.low)}, {points(g.high)}]"
        seeds = ", ".join(f"seed {s}: {points(v)}" for s, v in g.per_seed.items())
        r = reasoning.get(g.model)
        lines.append(
            f"| {g.model} | {len(g.per_seed)} | {points(g.mean)}{interval} | {seeds} | "
            f"{points(g.published) if g.published is not None else '–'} | {verdict(g)} | "
            f"{points(r.mean) if r else '–'} |"
        )
    if source:
        lines += ["", f"Published: {source}."]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, gains: list[Gain]) -> None:
    fields = ["model", "composite", "seeds", "gain", "ci_low", "ci_high", "per_seed", "published"]
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(fields)
        for g in gains:
            per_seed = ";".join(f"{s}={v:.4f}" for s, v in g.per_seed.items())
            published = "" if g.published is None else g.published
            writer.writerow(
                [g.model, g.composite, len(g.per_seed), g.mean, g.low, g.high, per_seed, published]
            )


def write_grid_report(
    eval_paths: list[Path],
    csv_path: Path,
    md_path: Path,
    method: str,
    baseline: str,
    published: dict[str, float],
    source: str = "",
) -> list[Gain]:
    """The grid table (csv and markdown) from the evaluation records of every variant."""
    records = read_evaluations(eval_paths)
    gains = grid_gains(records, method, baseline, published)
    write_csv(Path(csv_path), gains)
    with atomic_path(Path(md_path)) as tmp:
        tmp.write_text(markdown(gains, method, baseline, source), encoding="utf-8")
    return gains
