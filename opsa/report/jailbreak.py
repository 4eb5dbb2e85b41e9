"""The adaptive-jailbreak analysis in the report: attack success rate and pass@N per attack and
model variant (a PNG per policy) and a table for summary.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsa.errors import InputError
from opsa.figures import plt, save_png
from opsa.records import read_json
from opsa.report.cells import percent


def read_scores(path: str | Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise InputError(f"{path}: not a jailbreak analysis (no 'rows' list)")
    return data


def plot_jailbreaks(scores_path: str | Path, out_path: str | Path) -> None:
    """Bars: attack success rate per attack, one bar per variant, with its interval; a dot on
    each bar marks pass@N."""
    data = read_scores(scores_path)
    attacks = list(dict.fromkeys(r["attack"] for r in data["rows"]))
    variants = list(dict.fromkeys(r["variant"] for r in data["rows"]))
    width = 0.8 / len(variants)
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for k, variant in enumerate(variants):
        rows = {r["attack"]: r for r in data["rows"] if r["variant"] == variant}
        xs = [a + k * width for a in range(len(attacks)) if attacks[a] in rows]
        found = [rows[a] for a in attacks if a in rows]
        asr = [r["asr"]["mean"] for r in found]
        err = [
            [r["asr"]["mean"] - r["asr"]["low"] for r in found],
            [r["asr"]["high"] - r["asr"]["mean"] for r in found],
        ]
        bars = ax.bar(xs, asr, width, yerr=err, capsize=3, label=variant)
        ax.plot(xs, [r["pass_at_n"]["mean"] for r in found], "o", color=bars[0].get_facecolor())
    ax.set_xticks([a + width * (len(variants) - 1) / 2 for a in range(len(attacks))], attacks)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"attack success rate ({data['judge']}); dots: pass@{data['attempts']}")
    ax.legend(fontsize=8)
    save_png(fig, out_path)


def markdown_section(paths: list[Path]) -> str:
    """summary.md's jailbreak section: per policy, attack success rate and pass@N with their
    intervals for each attack and variant."""
    lines = ["", "## Adaptive jailbreaks", ""]
    for path in paths:
        data = read_scores(path)
        policy = Path(path).parent.name
        n = data["attempts"]
        lines += [f"![attack success rate](jailbreak/{policy}.png)", ""]
        lines += [f"**{policy}** (judge {data['judge']}, {n} attempts per behaviour)", ""]
        lines += [f"| model | attack | behaviours | ASR | pass@{n} |", "|---|---|---|---|---|"]
        for r in data["rows"]:
            asr, hit = r["asr"], r["pass_at_n"]
            lines.append(
                f"| {r['variant']} | {r['attack']} | {r['behaviours']} | "
                f"{percent(asr['mean'], asr['low'], asr['high'])} | "
                f"{percent(hit['mean'], hit['low'], hit['high'])} |"
            )
        lines.append("")
    return "\n".join(lines)
