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


def read_per_policy(paths: list[Path], keys: tuple[str, ...], what: str) -> dict[str, Any]:
    """policy -> the JSON record at each path (the policy is the file's folder name), each
    checked for `keys`."""
    out = {}
    for path in paths:
        record = read_json(path)
        if any(key not in record for key in keys):
            raise InputError(f"{path}: not a {what} (needs {', '.join(map(repr, keys))})")
        out[Path(path).parent.name] = record
    return out


def gate_warnings(records: dict[str, Any]) -> list[str]:
    """One line per policy whose record's gate was overridden."""
    return [
        f"**Warning ({policy}):** {r['gate']['warning']}"
        for policy, r in records.items()
        if r["gate"].get("overridden")
    ]


def read_teachers(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """policy -> its teachers.json."""
    return read_per_policy(paths, ("gate", "candidates"), "teachers file")


def warnings(paths: list[Path]) -> list[str]:
    """One line per policy whose context gate was overridden."""
    return gate_warnings(read_teachers(paths))


def metrics(paths: list[Path]) -> dict[str, Any]:
    """policy -> base, selected pair and candidates' points, for summary.json (DVC metrics)."""
    out: dict[str, Any] = {}
    for policy, t in read_teachers(paths).items():
        if t.get("pinned"):
            continue
        points = {"base": t["base"], "selected_pair": t["selected"]["pair"]}
        points |= {c["id"]: c for c in t["candidates"] if c["branch"] == "harmful"}
        out[policy] = point_metrics(points, t["gate"]["passed"])
    return out


def point_metrics(points: dict[str, Any], gate_passed: bool) -> dict[str, Any]:
    """name -> the four metrics of each point (None for NaN), and the gate's verdict."""
    numbers = {name: {m: _number(p.get(m)) for m in COLUMNS} for name, p in points.items()}
    return numbers | {"gate_passed": gate_passed}


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
            point_row("base model", t["base"], "–"),
            point_row("selected pair", t["selected"]["pair"], "–"),
        ]
        for c in t["candidates"]:
            if c["branch"] == "harmful":
                mark = "pass" if c["passes_gate"] else "fail: " + "; ".join(c["gate_failures"])
                lines.append(point_row(c["id"], c, mark))
        lines.append("")
    return "\n".join(lines)


def point_row(name: str, point: dict[str, Any], gate: str) -> str:
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
