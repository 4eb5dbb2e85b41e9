"""The report stage: evaluation records in; summary.csv, summary.md, summary.json and a plot
out."""

from __future__ import annotations

import csv
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

from opsa.errors import InputError
from opsa.evaluation.metrics import METRICS
from opsa.layout import Paths as P
from opsa.records import atomic_path, write_json
from opsa.report import paired
from opsa.report.cells import percent
from opsa.report.composite import Composite, composites
from opsa.report.evaluations import FIELDS, Record, read_evaluations
from opsa.report.plot import Point, plot_safety_reasoning

log = logging.getLogger(__name__)

ModelKey = tuple[str, str]


class ReportFiles(NamedTuple):
    """The report's outputs."""

    csv: Path  # one row per model, variant and set, plus the S and R composites
    json: Path  # the same, as DVC metrics
    paired: Path  # the paired comparisons against the baseline
    md: Path  # models x sets, the paired comparisons, the analyses' sections
    plot: Path  # safety against reasoning

    @classmethod
    def in_folder(cls, folder: str | Path) -> ReportFiles:
        """The files under `folder`, named as the workflow names them (opsa.layout)."""
        names = (P.summary_csv, P.summary_json, P.paired_csv, P.summary_md, P.safety_vs_reasoning)
        return cls(*(Path(folder) / Path(name).name for name in names))


ROLE_ORDER = list(METRICS)


def model_order(records: list[Record]) -> list[ModelKey]:
    """Models in name order, each model's base variant first and the others by name."""
    keys = {(r["model"], r["variant"]) for r in records}
    return sorted(keys, key=lambda k: (k[0], k[1] != "base", k[1]))


def column_order(records: list[Record]) -> list[tuple[str, str, str]]:
    """(role, set, metric) columns: harmful sets, over-refusal sets, then reasoning sets."""
    columns = {(r["role"], r["set"], r["metric"]) for r in records}
    return sorted(columns, key=lambda c: (ROLE_ORDER.index(c[0]), c[1], c[2]))


def composite_rows(model: ModelKey, found: dict[str, Composite]) -> list[Record]:
    return [
        {
            "model": model[0],
            "variant": model[1],
            "set": name,
            "role": "composite",
            "metric": c.metric,
            "value": c.value,
            "ci_low": c.low,
            "ci_high": c.high,
            "n": c.n,
            "judge": "+".join(c.judges),
            "direction": "higher_is_better",
        }
        for name, c in found.items()
    ]


def write_csv(path: Path, rows: list[Record]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def metrics(rows: list[Record]) -> dict[str, Any]:
    """The summary rows nested as model → variant → set → metric → value, interval and n:
    the form `dvc metrics show` and `dvc metrics diff` read (NaN becomes null)."""
    out: dict[str, Any] = {}
    for r in rows:
        entry = {k: None if math.isnan(r[k]) else r[k] for k in ("value", "ci_low", "ci_high")}
        sets = out.setdefault(r["model"], {}).setdefault(r["variant"], {})
        sets.setdefault(r["set"], {})[r["metric"]] = entry | {"n": r["n"]}
    return out


def cell(value: float, low: float, high: float, n: int) -> str:
    """A rate as a percentage with its interval and count, e.g. "12.5 [8.0, 17.0] n=40"."""
    return f"{percent(value, low, high)} n={n}"


def markdown(
    records: list[Record],
    found: dict[ModelKey, dict[str, Composite]],
    warnings: list[str] | None = None,
    flags: list[str] | None = None,
) -> str:
    by_key = {(r["model"], r["variant"], r["role"], r["set"], r["metric"]): r for r in records}
    columns = column_order(records)
    arrows = {"lower_is_better": "↓", "higher_is_better": "↑"}
    directions = {(r["role"], r["set"], r["metric"]): r["direction"] for r in records}
    head = [f"{s} {m} {arrows[directions[(role, s, m)]]}" for role, s, m in columns]
    lines = [
        "# Summary",
        "",
        *(f"{w}\n" for w in warnings or []),
        "Values in percent with 95% percentile-bootstrap intervals (prompts resampled); "
        "n = scored responses.",
        "",
        "| model | variant | " + " | ".join(head) + " | S ↑ | R ↑ |",
        "|" + "---|" * (len(columns) + 4),
    ]
    for model in model_order(records):
        cells = []
        for role, s, m in columns:
            r = by_key.get((*model, role, s, m))
            cells.append(cell(r["value"], r["ci_low"], r["ci_high"], r["n"]) if r else "–")
        for name in ("S", "R"):
            c = found[model].get(name)
            cells.append(cell(c.value, c.low, c.high, c.n) if c else "–")
        lines.append(f"| {model[0]} | {model[1]} | " + " | ".join(cells) + " |")
    tax = ["", "Reasoning below the base model's interval (flagged):"] if flags else []
    tax += [f"- {f}" for f in flags or []]
    return "\n".join(lines + [""] + notes(records, found) + tax) + "\n"


def notes(records: list[Record], found: dict[ModelKey, dict[str, Composite]]) -> list[str]:
    lines = [
        "S = 1 − mean of the safety rates (harmful compliance of each harmful set and over-refusal "
        "of each over-refusal set); R = mean accuracy over the reasoning sets. Their intervals "
        'combine the sets\' bootstrap replicates; "no interval" means a set stored none.',
        "",
        "Judges: " + "; ".join(sorted({f"{r['set']}: {r['judge']}" for r in records})) + ".",
    ]
    for name in ("S", "R"):
        set_lists = {c[name].sets for c in found.values() if name in c}
        if len(set_lists) > 1:
            lines += ["", f"Warning: {name} is over different sets for different models:"]
            lines += [
                f"- {m[0]}/{m[1]}: {', '.join(c[name].sets)}" for m, c in found.items() if name in c
            ]
    return lines


def safety_tax(records: list[Record], found: dict[ModelKey, dict[str, Composite]]) -> list[str]:
    """One line per trained variant and reasoning set (or R) whose accuracy falls below the
    lower end of its model's base variant's interval: the safety tax, flagged."""
    points = {
        (r["model"], r["variant"], r["set"]): (r["value"], r["ci_low"], r["ci_high"])
        for r in records
        if r["role"] == "eval_reasoning"
    }
    for (model, variant), found_here in found.items():
        if "R" in found_here:
            r = found_here["R"]
            points[(model, variant, "R")] = (r.value, r.low, r.high)
    flags = []
    for (model, variant, name), (value, _, _) in sorted(points.items()):
        base = points.get((model, "base", name))
        if variant != "base" and base is not None and not math.isnan(base[1]) and value < base[1]:
            flags.append(
                f"Safety tax: {model}/{variant} {name} {100 * value:.1f}, below the base "
                f"model's interval {percent(*base)}"
            )
    return flags


def plot_points(found: dict[ModelKey, dict[str, Composite]]) -> list[Point]:
    points = []
    for (model, variant), c in found.items():
        if "S" in c and "R" in c:
            s, r = c["S"], c["R"]
            points.append(
                Point(f"{model}/{variant}", r.value, r.low, r.high, s.value, s.low, s.high)
            )
        else:
            log.info("%s/%s: not plotted (needs both safety and reasoning sets)", model, variant)
    return points


def write_report(
    eval_paths: list[Path],
    out: ReportFiles,
    sections: list[str] | None = None,
    baseline: str = "offpolicy_sd",
    warnings: list[str] | None = None,
    extra_metrics: dict[str, Any] | None = None,
) -> None:
    """Every file of `out` from the evaluation records, the paired comparisons against
    `baseline`, the analyses' markdown `sections`, `warnings` on top of summary.md (a gate
    that was overridden) and `extra_metrics` beside the rows in summary.json."""
    records = read_evaluations([Path(p) for p in eval_paths])
    if not records:
        raise InputError("report: no evaluation files given")
    grouped: dict[ModelKey, list[Record]] = defaultdict(list)
    for r in records:
        grouped[(r["model"], r["variant"])].append(r)
    found = {model: composites(grouped[model]) for model in model_order(records)}
    differences = paired.paired_differences(records, baseline)
    columns = column_order(records)
    rows = []
    for model, found_here in found.items():
        rows += sorted(
            grouped[model], key=lambda r: columns.index((r["role"], r["set"], r["metric"]))
        )
        rows += composite_rows(model, found_here)
    write_csv(out.csv, rows)
    flags = safety_tax(records, found)
    write_json(out.json, metrics(rows) | {"safety_tax": flags} | (extra_metrics or {}))
    paired.write_csv(out.paired, differences)
    with atomic_path(out.md) as tmp:
        paired_section = paired.markdown_section(differences, baseline)
        text = markdown(records, found, warnings, flags) + paired_section
        text += "".join(sections or [])
        tmp.write_text(text, encoding="utf-8")
    plot_safety_reasoning(
        plot_points(found),
        out.plot,
        xlabel="reasoning accuracy R (mean over reasoning sets)",
        ylabel="safety score S = 1 − mean safety rate",
    )
