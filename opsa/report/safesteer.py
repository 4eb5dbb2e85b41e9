"""SafeSteer's artifacts in summary.md: per policy, the refusal direction and the safety tokens
its steered teacher promotes (the table the `safety_tokens` step writes beside its JSON), and
the (layer, position) scan that chose the direction, and the steered teacher at each
coefficient against the base model, each with its gate."""

from __future__ import annotations

from pathlib import Path

from opsa.errors import InputError
from opsa.records import read_json
from opsa.report.teachers import (
    HEAD,
    gate_warnings,
    point_metrics,
    point_row,
    read_per_policy,
)

TITLE = "# SafeSteer: refusal direction and safety tokens"


def markdown_section(paths: list[Path]) -> str:
    """summary.md's SafeSteer section: each policy's `safety_tokens.md`, under its name."""
    lines = ["", "## SafeSteer: refusal direction and safety tokens", ""]
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        if not text.startswith(TITLE):
            raise InputError(f"{path}: not a SafeSteer token table (no '{TITLE}' title)")
        lines += [f"**{Path(path).parent.name}**", "", text[len(TITLE) :].strip(), ""]
    return "\n".join(lines)


def scan_warnings(paths: list[Path]) -> list[str]:
    """One line per policy whose direction gate was overridden."""
    out = []
    for path in paths:
        gate = read_json(path).get("gate", {})
        if gate.get("overridden"):
            out.append(f"**Warning ({Path(path).parent.name}):** {gate['warning']}")
    return out


def scan_section(paths: list[Path], top: int = 8) -> str:
    """summary.md's section on each policy's direction scan: the verdict and the candidates
    that induce the most refusal."""
    lines = ["", "## SafeSteer: the refusal-direction scan", ""]
    lines += [
        "Each (layer, position) candidate scored on held-out prompts by refusal log-odds at the "
        "first answer token: on harmful prompts with the direction ablated (bypass, lower is "
        "better), on harmless prompts with it added (induce, must exceed the threshold) and the "
        "KL that ablation causes on harmless prompts. The candidates that induce most:",
        "",
    ]
    for path in paths:
        scan = read_json(path)
        if "candidates" not in scan or "gate" not in scan:
            raise InputError(f"{path}: not a direction scan (needs 'candidates' and 'gate')")
        gate, chosen = scan["gate"], scan["chosen"]
        verdict = "passed" if gate["passed"] else "overridden" if gate["overridden"] else "failed"
        scored = [c for c in scan["candidates"] if c["induce"] is not None]
        lines += [
            f"**{Path(path).parent.name}**: gate {verdict}; "
            f"{sum(c['kept'] for c in scan['candidates'])} of {len(scored)} scored candidates "
            f"kept; steering at layer {chosen['layer']}, position {chosen['position']}.",
            "",
            "| layer | position | bypass ↓ | induce ↑ | KL | kept |",
            "|---|---|---|---|---|---|",
        ]
        for c in sorted(scored, key=lambda c: -c["induce"])[:top]:
            lines.append(
                f"| {c['layer']} | {c['position']} | {c['bypass']:.2f} | {c['induce']:.2f} | "
                f"{c['kl']:.3f} | {'yes' if c['kept'] else c['why']} |"
            )
        lines.append("")
    return "\n".join(lines)


def read_steered_teachers(paths: list[Path]) -> dict[str, dict]:
    """policy -> its steered_teacher.json (written by the `steered-teacher` step)."""
    return read_per_policy(paths, ("coefficients", "gate", "base"), "steered-teacher record")


def teacher_warnings(paths: list[Path]) -> list[str]:
    """One line per policy whose steered-teacher gate was overridden."""
    return gate_warnings(read_steered_teachers(paths))


def teacher_metrics(paths: list[Path]) -> dict[str, dict]:
    """policy -> the base's and each coefficient's point, for summary.json (DVC metrics)."""
    out = {}
    for policy, r in read_steered_teachers(paths).items():
        points = {"base": r["base"]} | {f"c={p['coefficient']:g}": p for p in r["coefficients"]}
        out[policy] = point_metrics(points, r["gate"]["passed"])
    return out


def teacher_section(paths: list[Path]) -> str:
    """summary.md's section on SafeSteer's steered teacher: each coefficient against the base."""
    lines = ["", "## SafeSteer: is the steered teacher worth distilling?", ""]
    lines += [
        "The base model with coefficient × refusal direction added at the direction's layer, on "
        "the prompts and draws of the context teachers above (percent, 95% intervals); the "
        "gate reads the coefficient training uses.",
        "",
    ]
    for policy, r in read_steered_teachers(paths).items():
        gate = r["gate"]
        verdict = "passed" if gate["passed"] else "overridden" if gate["overridden"] else "off"
        where = r["direction"]
        lines += [
            f"**{policy}**: gate {verdict} at coefficient {r['coefficient']:g} (direction at "
            f"layer {where['layer']}, position {where['position']}; judge {r['judge']}).",
            "",
            HEAD.replace("| teacher |", "| coefficient |"),
            "|---|---|---|---|---|---|",
            point_row("base model", r["base"], "–"),
        ]
        for p in r["coefficients"]:
            mark = "pass" if p["passes_gate"] else "fail: " + "; ".join(p["gate_failures"])
            trained = " (trained)" if p["coefficient"] == r["coefficient"] else ""
            lines.append(point_row(f"{p['coefficient']:g}{trained}", p, mark))
        lines.append("")
    return "\n".join(lines)
