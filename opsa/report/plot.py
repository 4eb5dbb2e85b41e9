"""The safety-against-reasoning plot: one point per model variant, with error bars and a legend."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from opsa.figures import plt, save_png


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    x_low: float
    x_high: float
    y: float
    y_low: float
    y_high: float


def _error(value: float, low: float, high: float) -> list[list[float]]:
    if math.isnan(low) or math.isnan(high):
        return [[0.0], [0.0]]
    return [[value - low], [high - value]]


def plot_safety_reasoning(
    points: list[Point], out_path: str | Path, xlabel: str, ylabel: str
) -> None:
    """Write a PNG; with no points it says so on the canvas instead of drawing axes' data."""
    fig, ax = plt.subplots(figsize=(6.0, 4.5), dpi=120)
    for point in points:
        ax.errorbar(
            point.x,
            point.y,
            xerr=_error(point.x, point.x_low, point.x_high),
            yerr=_error(point.y, point.y_low, point.y_high),
            fmt="o",
            capsize=3,
            label=point.label,
        )
    if points:  # a legend, not labels beside the points: variants often share a value
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(
            0.5,
            0.5,
            "no model has both safety and reasoning results",
            ha="center",
            transform=ax.transAxes,
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_png(fig, out_path, dpi="figure")
