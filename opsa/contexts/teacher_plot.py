"""Every candidate's teacher in the (borderline over-refusal, harmful compliance) plane, with
95% intervals, the base model marked, the gate's over-refusal budget drawn, and the selected
pair (and SafeSteer's steered teacher at each coefficient, as triangles): a teacher worth
distilling sits below and not far right of the base."""

from __future__ import annotations

from pathlib import Path

from opsa.contexts.flip_rate_plot import COLOURS
from opsa.errors import InputError
from opsa.figures import plt, save_png
from opsa.records import read_json


def plot_teachers(
    teachers_path: str | Path, out_path: str | Path, steered_path: str | Path | None = None
) -> None:
    """Write a PNG of the teachers of `teachers.json` (harmful-branch candidates), and of
    SafeSteer's steered teacher at each coefficient (`steered_path`, when given)."""
    teachers = read_json(teachers_path)
    if teachers.get("pinned"):
        raise InputError(f"{teachers_path}: pinned contexts are not measured; nothing to plot")
    base, gate = teachers["base"], teachers["gate"]
    fig, ax = plt.subplots(figsize=(7.5, 6), layout="constrained")
    for c in teachers["candidates"]:
        if c["branch"] != "harmful":
            continue
        colour = COLOURS.get(c["placement"], "#777777")
        _point(ax, c, colour, "o", "white" if not c["passes_gate"] else colour)
        ax.annotate(c["id"], _xy(c), fontsize=6, xytext=(3, 3), textcoords="offset points")
    _point(ax, base, "black", "*", "black", size=14)
    ax.annotate("base", _xy(base), fontsize=8, xytext=(4, -10), textcoords="offset points")
    pair = teachers["selected"]["pair"]
    _point(ax, pair, "#aa3377", "D", "#aa3377", size=8)
    ax.annotate("selected pair", _xy(pair), fontsize=8, xytext=(4, 4), textcoords="offset points")
    if steered_path is not None:
        for p in read_json(steered_path)["coefficients"]:
            face = "#228833" if p["passes_gate"] else "white"
            _point(ax, p, "#228833", "^", face, size=7)
            label = f"steered c={p['coefficient']:g}"
            ax.annotate(label, _xy(p), fontsize=6, xytext=(3, -8), textcoords="offset points")
    budget = base["borderline_refusal"] + gate["max_borderline_increase"]
    ax.axvline(budget, color="#999999", linestyle="--", linewidth=1)
    ax.axhline(1 - base["harmful_safe"], color="#999999", linestyle=":", linewidth=1)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("over-refusal on borderline benign prompts (selection split)")
    ax.set_ylabel("harmful compliance (1 - harmful safe)")
    verdict = "passed" if gate["passed"] else "OVERRIDDEN" if gate["overridden"] else "failed"
    ax.set_title(
        f"Teachers: filled = passes the gate; dashed = over-refusal budget (gate {verdict})",
        fontsize=10,
    )
    save_png(fig, out_path)


def _xy(point: dict) -> tuple[float, float]:
    return point["borderline_refusal"], 1 - point["harmful_safe"]


def _point(ax: plt.Axes, p: dict, colour: str, marker: str, face: str, size: float = 6) -> None:
    x, y = _xy(p)
    xerr = [[x - p["borderline_refusal_low"]], [p["borderline_refusal_high"] - x]]
    yerr = [
        [p["harmful_safe_high"] - p["harmful_safe"]],
        [p["harmful_safe"] - p["harmful_safe_low"]],
    ]
    ax.errorbar(
        [x], [y], xerr=xerr, yerr=yerr, fmt=marker, color=colour, markerfacecolor=face,
        markersize=size, elinewidth=0.6, capsize=1.5,
    )  # fmt: skip
