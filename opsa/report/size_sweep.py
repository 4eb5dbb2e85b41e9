"""The training-set-size sweep: safety score S and reasoning R of each method trained on a
share of the training items, against the share (the base model as the reference line)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from opsa.errors import InputError
from opsa.figures import plt, save_png
from opsa.records import read_json, write_json
from opsa.report.cells import percent
from opsa.report.composite import composites
from opsa.report.evaluations import read_evaluations

Point = tuple[str, float]  # (method, share of the training items); ("base", 0.0) for the base


def size_sweep(eval_paths: list[Path], points: dict[str, Point], out_path: str | Path) -> None:
    """`points` maps each variant to its method and share; writes S and R per point."""
    by_variant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in read_evaluations(eval_paths):
        by_variant[record["variant"]].append(record)
    rows = []
    for variant, (method, share) in points.items():
        if variant not in by_variant:
            raise InputError(f"size sweep: no evaluation of variant '{variant}' among --evals")
        found = composites(by_variant[variant])
        if set(found) != {"S", "R"}:
            raise InputError(f"size sweep: variant '{variant}' needs safety and reasoning sets")
        rows.append(
            {
                "variant": variant,
                "method": method,
                "fraction": share,
                **{k: _ci(c) for k, c in found.items()},
            }
        )
    write_json(out_path, {"rows": sorted(rows, key=lambda r: (r["method"], r["fraction"]))})


def plot_size_sweep(sweep_path: str | Path, out_path: str | Path) -> None:
    rows = read_json(sweep_path)["rows"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
    for ax, key, label in zip(axes, ("S", "R"), ("safety score S", "reasoning R"), strict=True):
        for method in dict.fromkeys(r["method"] for r in rows):
            line = [r for r in rows if r["method"] == method]
            if method == "base":
                ax.axhline(line[0][key]["value"], color="grey", linestyle="--", label="base")
                continue
            xs = [100 * r["fraction"] for r in line]
            ys = [r[key]["value"] for r in line]
            err = [
                [y - r[key]["low"] for y, r in zip(ys, line, strict=True)],
                [r[key]["high"] - y for y, r in zip(ys, line, strict=True)],
            ]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=method)
        ax.set_xscale("log")
        ax.set_xlabel("training items used (%)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    save_png(fig, out_path)


def markdown_section(paths: list[Path]) -> str:
    lines = ["", "## Training-set size", ""]
    for path in paths:
        policy = Path(path).parent.name
        lines += [f"![size sweep](size_sweep/{policy}.png)", "", f"**{policy}**", ""]
        lines += ["| method | training items | S | R |", "|---|---|---|---|"]
        for r in read_json(path)["rows"]:
            share = "–" if r["method"] == "base" else f"{100 * r['fraction']:.0f}%"
            lines.append(f"| {r['method']} | {share} | {percent(**r['S'])} | {percent(**r['R'])} |")
        lines.append("")
    return "\n".join(lines)


def _ci(c: Any) -> dict[str, float]:
    return {"value": c.value, "low": c.low, "high": c.high}
