"""Teacher flip rate by candidate context: sorted, with 95% intervals, coloured by placement,
beside a by-placement summary (each candidate a dot, the placement's mean a bar)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from opsa.errors import InputError
from opsa.figures import plt, save_png
from opsa.prompting.placement import PLACEMENTS
from opsa.records import require_columns

COLOURS = dict(zip(PLACEMENTS, ["#4477aa", "#ee6677", "#228833", "#ccbb44"], strict=True))
LABELS = {"tfr": "TFR (all harmful prompts)", "tfr_unsafe": "TFR (base-unsafe prompts)"}


def plot_flip_rates(
    scores_path: str | Path, out_path: str | Path, rate: Literal["tfr", "tfr_unsafe"] = "tfr"
) -> None:
    """Write a PNG of `rate` per candidate and per placement from a flip-rate CSV."""
    table = pd.read_csv(scores_path, keep_default_na=False, na_values=[""])
    require_columns(
        table.to_dict("records"),
        ["id", "placement", rate, f"{rate}_low", f"{rate}_high"],
        scores_path,
    )
    table = table[table[rate].notna()]  # benign-branch candidates have no flip rate
    unknown = set(table["placement"]) - set(PLACEMENTS)
    if unknown:
        raise InputError(f"{scores_path}: unknown placement {sorted(unknown)[0]!r}")
    table = table.sort_values([rate, "id"], ascending=[True, True])
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 1.5 + 0.3 * len(table)), width_ratios=[3, 1.3], layout="constrained"
    )
    _by_candidate(left, table, rate)
    _by_placement(right, table, rate)
    fig.suptitle(f"{LABELS[rate]} with 95% bootstrap intervals")
    save_png(fig, out_path)


def _by_candidate(ax: plt.Axes, table: pd.DataFrame, rate: str) -> None:
    y = range(len(table))
    colours = [COLOURS[p] for p in table["placement"]]
    errors = [table[rate] - table[f"{rate}_low"], table[f"{rate}_high"] - table[rate]]
    ax.barh(y, table[rate], color=colours, xerr=errors, ecolor="#333333", capsize=2)
    ax.set_yticks(list(y), table["id"], fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel(LABELS[rate])
    present = [p for p in PLACEMENTS if p in set(table["placement"])]
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[p]) for p in present]
    ax.legend(handles, present, title="placement", loc="lower right", fontsize=8)


def _by_placement(ax: plt.Axes, table: pd.DataFrame, rate: str) -> None:
    present = [p for p in PLACEMENTS if p in set(table["placement"])]
    means = [table.loc[table["placement"] == p, rate].mean() for p in present]
    ax.bar(range(len(present)), means, color=[COLOURS[p] for p in present], alpha=0.5)
    for k, p in enumerate(present):
        values = table.loc[table["placement"] == p, rate]
        ax.scatter([k] * len(values), values, color=COLOURS[p], edgecolor="black", zorder=3)
    ax.set_xticks(range(len(present)), present, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"{rate}: candidates (dots), mean (bar)")
    ax.set_title("by placement", fontsize=10)
