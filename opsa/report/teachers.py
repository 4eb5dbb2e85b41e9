"""The teachers in the report: per policy, the base model's point, every candidate context's
teacher, the selected pair and the gate's verdict (from `teachers.json`, written by the
selection). A gate that was overridden becomes a warning at the top of summary.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsa.errors import InputError
from opsa.records import read_json
from opsa.report.cells import percent

COLUMNS = ("harmful_safe", "borderline_refusal", "discrimination", "composite")
HEAD = "| teacher | harmful safe ↑ | borderline refusal ↓ | discrimination ↑ | composite ↑ | gate |"


def read_teachers(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """policy -> its teachers.json (the policy is the file's folder name)."""
    out = {}
    for path in paths:
        teachers = read_json(path)
        if "gate" not in teachers or "candidates" not in teachers:
            raise InputError(f"{path}: not a teachers file (needs 'gate' and 'candidates')")
        out[Path(path).parent.name] = teachers
    return out


def warnings(paths: list[Path]) -> list[str]:
    """One line per policy whose gate was overridden."""
    return [
        f"**Warning ({policy}):** {t['gate']['warning']}"
        for policy, t in read_teachers(paths).items()
        if t["gate"].get("overridden")
    ]


def metrics(paths: list[Path]) -> dict[str, Any]:
    """policy -> base, selected pair and candidates' points, for summary.json (DVC metrics)."""
    out: dict[str, Any] = {}
    for policy, t in read_teachers(paths).items():
        if t.get("pinned"):
            continue
        points = {"base": t["base"], "selected_pair": t["selected"]["pair"]}
        points |= {c["id"]: c for c in t["candidates"] if c["branch"] == "harmful"}
        out[policy] = {
            name: {m: _number(p.get(m)) for m in COLUMNS} for name, p in points.items()
        } | {"gate_passed": t["gate"]["passed"]}
    return out


def markdown_section(paths: list[Path]) -> str:
    lines = ["", "## Teachers: is the context worth distilling?", ""]
    lines += [
        "Each teacher (the base model with a candidate context) on the selection split's harmful "
        "prompts and borderline benign prompts, in percent with 95% bootstrap intervals; "
        "discrimination = harmful safe − borderline refusal, composite = the mean of harmful "
        "safe and 1 − borderline refusal. The gate asks for harmful safe above the base's "
        "(interval excluding it), borderline refusal within the budget above the base's, and a "
        "composite above the base's.",
        "",
    ]
    for policy, t in read_teachers(paths).items():
        lines += [f"**{policy}**", ""]
        if t.get("pinned"):
            lines += ["Contexts pinned by id: no teacher was measured, no gate was checked.", ""]
            continue
        gate = t["gate"]
        budget = t["base"]["borderline_refusal"] + gate["max_borderline_increase"]
        verdict = (
            "passed" if gate["passed"] else "overridden" if gate["overridden"] else "not checked"
        )
        lines += [
            f"Gate: {verdict}; {gate['candidates_passing']} of "
            f"{sum(c['branch'] == 'harmful' for c in t['candidates'])} harmful-branch candidates "
            f"pass; borderline budget {100 * budget:.1f}%. Selected: c_h "
            f"'{t['selected']['harmful']}', c_b '{t['selected']['benign']}'.",
            "",
            HEAD,
            "|---|---|---|---|---|---|",
            _row("base model", t["base"], "–"),
            _row("selected pair", t["selected"]["pair"], "–"),
        ]
        for c in t["candidates"]:
            if c["branch"] == "harmful":
                mark = "pass" if c["passes_gate"] else "fail: " + "; ".join(c["gate_failures"])
                lines.append(_row(c["id"], c, mark))
        lines.append("")
    return "\n".join(lines)


def _row(name: str, point: dict[str, Any], gate: str) -> str:
    cells = [
        percent(point[m], point[f"{m}_low"], point[f"{m}_high"]) if _number(point[m]) is not None
        else "–"
        for m in COLUMNS
    ]  # fmt: skip
    return f"| {name} | " + " | ".join(cells) + f" | {gate} |"


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return float(value)
