"""The token-level analysis in the report: divergence against response position per model
(a PNG) and, for summary.md, the tokens that carry most of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsa.errors import InputError
from opsa.figures import plt, save_png
from opsa.records import read_json

TABLE_ROWS = 8


def read_analysis(path: str | Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise InputError(f"{path}: not a token-divergence analysis (no 'models' object)")
    return data


def plot_token_divergence(analysis_path: str | Path, out_path: str | Path) -> None:
    """Mean divergence from the context-conditioned teacher at each response position."""
    data = read_analysis(analysis_path)
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for name, found in data["models"].items():
        rows = found["per_position"]
        ax.plot([r["position"] for r in rows], [r["mean_divergence"] for r in rows], label=name)
    ax.set_xlabel("response position (tokens)")
    ax.set_ylabel(f"mean {data['divergence']} to the teacher")
    ax.set_title(f"teacher = base model with context '{data['context']}', "
                 f"{data['rollouts']} base responses", fontsize=9)  # fmt: skip
    ax.legend()
    save_png(fig, out_path)


def early_share(found: dict[str, Any], first: int = 10) -> float:
    """The share of the total divergence on the first `first` response positions."""
    rows = found["per_position"]
    total = sum(r["mean_divergence"] * r["count"] for r in rows)
    early = sum(r["mean_divergence"] * r["count"] for r in rows if r["position"] < first)
    return early / total if total > 0 else 0.0


def markdown_section(paths: list[Path]) -> str:
    """summary.md's token-level section: per policy and model, the early share and the top
    tokens with their share of the divergence."""
    lines = ["", "## Token-level analysis", ""]
    for path in paths:
        data = read_analysis(path)
        policy = Path(path).parent.name
        lines.append(f"![divergence by position](token_divergence/{policy}.png)")
        lines.append("")
        lines += [f"**{policy}** ({data['divergence']}, {data['rollouts']} responses)", ""]
        lines += ["| model | share in first 10 positions | top tokens (share) |", "|---|---|---|"]
        for name, found in data["models"].items():
            tops = ", ".join(
                f"`{t['token']!r}` {t['share']:.1%}" for t in found["top_tokens"][:TABLE_ROWS]
            )
            lines.append(f"| {name} | {early_share(found):.1%} | {tops} |")
        lines.append("")
    return "\n".join(lines)
