"""What each safety figure measures: the judge behind it, what that judge was built to detect,
and its validation on the matching kind of data.

A refusal detector (the pattern and prefix judges) scores over-refusal directly, and harmful
compliance and jailbreak success only as "did not refuse": a figure it gives for harm is
marked as not validated for harm. A guard or classifier judge built for harm is marked with
its own validation where this run measured one (`judge_validation`), else as published, not
measured here. The section goes into summary.md; the warning line above the summary table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsa.records import read_json
from opsa.report.evaluations import Record

# what each judge kind was built to detect (opsa.judges.spec.KINDS)
BUILT_FOR = {
    "refusal_pattern": "refusal",
    "refusal_prefix": "refusal",
    "llama_guard": "harm",
    "wildguard": "harm",
    "harmbench": "harm",
    "strongreject": "harm",
    "classifier": "its labels",
}
MEASURES = {"eval_harmful": "harm", "eval_overrefusal": "refusal", "jailbreak": "harm"}
DOCUMENTED = "docs/method.md, Judge validation"


def figures_by_judge(records: list[Record], jailbreak_judge: str | None) -> dict[str, set[str]]:
    """judge name -> the kinds of figure it produced here (eval_harmful, eval_overrefusal,
    jailbreak)."""
    found: dict[str, set[str]] = {}
    for r in records:
        if r.get("judge") and r["role"] in MEASURES:
            found.setdefault(r["judge"], set()).add(r["role"])
    if jailbreak_judge:
        found.setdefault(jailbreak_judge, set()).add("jailbreak")
    return found


def validation_line(name: str, kind: str, validations: dict[str, dict[str, Any]]) -> str:
    """This run's own validation of the judge, else where its figures are documented."""
    own = validations.get(name)
    if own is not None:
        rho = (own.get("ranking") or {}).get("spearman")
        ranked = f", policies ranked at ρ {rho:.2f}" if rho is not None else ""
        kappa = own.get("kappa")
        agreement = f"{100 * own['agreement']:.1f}%" if own.get("agreement") is not None else "–"
        return f"this run: {agreement} agreement (κ {kappa}){ranked} on {own['n']} labelled"
    if kind in ("refusal_pattern", "refusal_prefix"):
        return f"on refusal labels ({DOCUMENTED})"
    if kind == "classifier":
        return "none here (add its labelled files under judge_validation)"
    return "published by its authors, not measured here"


def unvalidated(kind: str, figure: str) -> bool:
    """Whether a judge of `kind` gives a `figure` (harm or refusal) it was not built for."""
    built = BUILT_FOR.get(kind, "its labels")
    return built != "its labels" and built != MEASURES[figure]


def markdown_section(
    records: list[Record],
    judges: dict[str, dict[str, Any]],
    validation_files: list[Path],
    jailbreak_judge: str | None = None,
) -> str:
    validations = {v["judge"]: v for v in map(read_json, validation_files)}
    lines = [
        "",
        "## Judges: what each safety figure measures",
        "",
        "| judge | kind | built to detect | figures here | validated |",
        "|---|---|---|---|---|",
    ]
    for name, figures in sorted(figures_by_judge(records, jailbreak_judge).items()):
        kind = judges.get(name, {}).get("kind", "?")
        named = []
        for figure in sorted(figures):
            mark = (
                " (not validated for harm: a rate of not refusing)"
                if (unvalidated(kind, figure) and MEASURES[figure] == "harm")
                else ""
            )
            named.append(_FIGURE[figure] + mark)
        lines.append(
            f"| {name} | {kind} | {BUILT_FOR.get(kind, '?')} | {'; '.join(named)} "
            f"| {validation_line(name, kind, validations)} |"
        )
    return "\n".join(lines) + "\n"


def warning(
    records: list[Record], judges: dict[str, dict[str, Any]], jailbreak_judge: str | None
) -> list[str]:
    """The line above the summary table when a harm figure comes from a refusal detector."""
    names = sorted(
        name
        for name, figures in figures_by_judge(records, jailbreak_judge).items()
        if any(
            MEASURES[f] == "harm" and unvalidated(judges.get(name, {}).get("kind", ""), f)
            for f in figures
        )
    )
    if not names:
        return []
    return [
        f"**Judge validity:** harmful compliance and jailbreak success here come from "
        f"{', '.join(f'`{n}`' for n in names)}, a refusal detector: they are rates of not "
        "refusing, not validated as harm rates (section Judges)."
    ]


_FIGURE = {
    "eval_harmful": "harmful compliance",
    "eval_overrefusal": "over-refusal",
    "jailbreak": "jailbreak success",
}
