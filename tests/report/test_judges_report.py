"""The report names the judge behind every safety figure, what it was built to detect and its
validation; a harm figure from a refusal detector is marked, on evaluation records written by
the real judge and scorer."""

from __future__ import annotations

from pathlib import Path

from opsa.records import write_json
from opsa.report.evaluations import read_evaluations
from opsa.report.judges import markdown_section, warning
from tests.report.test_paired import evaluate, flags

PATTERN = {"refusal": {"kind": "refusal_pattern"}}


def records(tmp_path: Path):
    refused = {"harm": flags(8, {0, 1}), "probe": flags(8, set())}
    return read_evaluations(evaluate(tmp_path, "base", refused))


def test_a_harm_figure_from_a_refusal_detector_is_marked(tmp_path):
    found = records(tmp_path)
    assert {r["judge"] for r in found} == {"refusal"}
    section = markdown_section(found, PATTERN, [], jailbreak_judge="refusal")
    row = next(line for line in section.splitlines() if line.startswith("| refusal |"))
    assert "| refusal_pattern | refusal |" in row
    assert "harmful compliance (not validated for harm" in row
    assert "jailbreak success (not validated for harm" in row
    assert "over-refusal |" not in row and "over-refusal" in row  # refusal is what it detects
    assert "docs/method.md, Judge validation" in row
    (line,) = warning(found, PATTERN, "refusal")
    assert line.startswith("**Judge validity:**") and "`refusal`" in line


def test_a_harm_judge_is_not_marked_and_a_runs_own_validation_is_quoted(tmp_path):
    found = records(tmp_path)
    guard = {"refusal": {"kind": "llama_guard", "model": "lg"}}
    assert warning(found, guard, None) == []
    assert "not validated" not in markdown_section(found, guard, [])
    validation = tmp_path / "refusal.json"
    write_json(
        validation,
        {"judge": "refusal", "n": 1637, "agreement": 0.8943, "kappa": 0.7771,
         "ranking": {"spearman": 0.6001}},
    )  # fmt: skip
    section = markdown_section(found, PATTERN, [validation])
    assert "this run: 89.4% agreement (κ 0.7771), policies ranked at ρ 0.60 on 1637" in section
