"""Flip rate against outcome: OPSA trained with contexts of different teacher flip rate (the
selected one, a middle and the last eligible one), and each trained model's harmful
compliance (mean over the harmful sets) against its context's TFR, with Spearman's rank
correlation (the paper: -1.00 over 3 models x 3 contexts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from opsa.errors import InputError
from opsa.figures import plt, save_png
from opsa.records import read_json, write_json
from opsa.report.cells import percent
from opsa.report.composite import composite
from opsa.report.evaluations import read_evaluations


def flip_rate_outcome(
    eval_paths: list[Path],
    contexts: dict[str, Path],
    ranking_path: str | Path,
    out_path: str | Path,
) -> None:
    """`contexts` maps each trained variant to the contexts file it trained with."""
    tfr = pd.read_csv(ranking_path).set_index("id")["tfr"]
    harmful = [r for r in read_evaluations(eval_paths) if r["role"] == "eval_harmful"]
    rows = []
    for variant, path in [("base", None), *contexts.items()]:
        records = [r for r in harmful if r["variant"] == variant]
        if not records:
            raise InputError(f"flip rate vs outcome: no harmful-set evaluation of '{variant}'")
        outcome = composite(records, "harmful_compliance", complement=False)
        context = read_json(path)["harmful"]["id"] if path else None
        if context is not None and context not in tfr.index:
            raise InputError(f"{ranking_path}: context '{context}' of {path} is not ranked")
        rows.append(
            {
                "variant": variant,
                "context": context,
                "tfr": None if context is None else float(tfr[context]),
                "harmful_compliance": {
                    "value": outcome.value,
                    "low": outcome.low,
                    "high": outcome.high,
                },
            }
        )
    trained = [r for r in rows if r["context"] is not None]
    write_json(out_path, {"rows": rows, "spearman": spearman(trained)})


def spearman(rows: list[dict[str, Any]]) -> float | None:
    """Spearman's rho of TFR against harmful compliance (Pearson on average ranks); None when
    either side is constant or there are fewer than 3 points."""
    if len(rows) < 3:
        return None
    x = pd.Series([r["tfr"] for r in rows]).rank()
    y = pd.Series([r["harmful_compliance"]["value"] for r in rows]).rank()
    if x.nunique() < 2 or y.nunique() < 2:
        return None
    return float(x.corr(y))


def plot_flip_rate_outcome(analysis_path: str | Path, out_path: str | Path) -> None:
    data = read_json(analysis_path)
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for r in data["rows"]:
        hc = r["harmful_compliance"]
        if r["context"] is None:
            ax.axhline(hc["value"], color="grey", linestyle="--", label="base (untrained)")
            continue
        ax.errorbar(
            r["tfr"],
            hc["value"],
            yerr=[[hc["value"] - hc["low"]], [hc["high"] - hc["value"]]],
            marker="o",
            capsize=3,
        )
        ax.annotate(
            r["context"],
            (r["tfr"], hc["value"]),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    rho = data["spearman"]
    ax.set_title(f"Spearman rho = {rho:.2f}" if rho is not None else "Spearman rho: n/a")
    ax.set_xlabel("teacher flip rate of the training context")
    ax.set_ylabel("harmful compliance after OPSA")
    ax.legend(fontsize=8)
    save_png(fig, out_path)


def markdown_section(paths: list[Path]) -> str:
    lines = ["", "## Flip rate against outcome", ""]
    pooled = []
    for path in paths:
        data = read_json(path)
        policy = Path(path).parent.name
        rho = data["spearman"]
        lines += [f"![flip rate against outcome](flip_rate_outcome/{policy}.png)", ""]
        lines += [f"**{policy}** (Spearman rho {'n/a' if rho is None else f'{rho:.2f}'})", ""]
        lines += ["| model | context | TFR | harmful compliance |", "|---|---|---|---|"]
        for r in data["rows"]:
            hc = r["harmful_compliance"]
            tfr = "–" if r["tfr"] is None else f"{100 * r['tfr']:.1f}"
            lines.append(f"| {r['variant']} | {r['context'] or '–'} | {tfr} | {percent(**hc)} |")
            pooled += [r] if r["context"] is not None else []
        lines.append("")
    if len(paths) > 1:
        rho = spearman(pooled)
        lines += [
            f"Pooled over {len(paths)} policies: Spearman rho "
            f"{'n/a' if rho is None else f'{rho:.2f}'} ({len(pooled)} models).",
            "",
        ]
    return "\n".join(lines)
