"""The teachers in the report: a section with every candidate's point beside the base's, the
gate's warning on top of summary.md when it was overridden, and DVC metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from opsa.cli import main
from opsa.contexts.flip_rate import score_columns
from opsa.contexts.select import SelectionConfig, select_contexts
from opsa.contexts.teacher_plot import plot_teachers
from opsa.records import read_json, write_json
from opsa.report.summary import ReportFiles
from opsa.teachers import teacher_point

NAMES = ("csv", "json", "paired", "md", "plot")  # ReportFiles' order
BASE_SAFE, BASE_BORDERLINE = [False] * 9 + [True], [False] * 10


def candidate(id: str, safe: list[bool], refused: list[bool]) -> dict:
    row = dict.fromkeys(score_columns(), 0)
    row |= {"id": id, "branch": "harmful", "placement": "user_prefix", "text": id}
    row |= {"judge": "refusal_pattern", "tfr": float(np.mean(safe)), "over_refusal": 0.0}
    row |= {"benign_kept": 1.0, "benign_length_ratio": 1.0}
    row |= teacher_point(np.array(safe), np.array(refused), 200, 0)
    return row | teacher_point(np.array(BASE_SAFE), np.array(BASE_BORDERLINE), 200, 0, "base_")


def select(tmp_path: Path, rows: list[dict], config: SelectionConfig) -> Path:
    scores, pool = tmp_path / "flip_rates.csv", tmp_path / "candidates.jsonl"
    pd.DataFrame(rows, columns=score_columns()).to_csv(scores, index=False)
    lines = [{"id": r["id"], "text": r["id"], "placement": "user_prefix"} for r in rows]
    pool.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "m"
    select_contexts(scores, pool, config, out / "s.json", out / "r.csv", out / "teachers.json")
    return out / "teachers.json"


def report(tmp_path: Path, teachers: Path) -> tuple[str, dict]:
    record = {
        "model": "m", "variant": "base", "set": "hb", "role": "eval_harmful",
        "metric": "harmful_compliance", "value": 0.9, "ci_low": 0.8, "ci_high": 1.0, "n": 10,
        "judge": "refusal_pattern", "direction": "lower_is_better", "replicate_means": [],
    }  # fmt: skip
    write_json(tmp_path / "eval.json", record)
    out = ReportFiles.in_folder(tmp_path / "report")
    args = ["--threads", "1", "report", "--evals", str(tmp_path / "eval.json")]
    args += ["--teachers", str(teachers)]
    args += [f"--out-{name}={path}" for name, path in zip(NAMES, out, strict=True)]
    assert main(args) == 0
    return out.md.read_text(), read_json(out.json)


def test_an_overridden_gate_opens_the_report_with_a_warning(tmp_path):
    # refuses everything: safe on harmful prompts, but refuses every borderline prompt too
    indiscriminate = candidate("refuse-all", [True] * 10, [True] * 8 + [False] * 2)
    teachers = select(tmp_path, [indiscriminate], SelectionConfig(gate={"override": True}))
    md, metrics = report(tmp_path, teachers)
    first = md.split("\n\n")[1]
    assert first.startswith("**Warning (m):** teacher gate overridden") and "'refuse-all'" in first
    assert "borderline refusal 0.800 above the base's 0.000 + 0.1" in first
    assert "| refuse-all | 100.0 [100.0, 100.0] | 80.0 [" in md
    assert "| base model | 10.0 [" in md
    assert metrics["teachers"]["m"]["gate_passed"] is False
    assert metrics["teachers"]["m"]["refuse-all"]["borderline_refusal"] == 0.8
    plot_teachers(teachers, tmp_path / "teachers.png")
    assert (tmp_path / "teachers.png").stat().st_size > 10_000
    # SafeSteer's steered teacher, one triangle per coefficient, on the same plane
    point = teacher_point(np.array([True] * 5 + [False] * 5), np.array([False] * 10), 200, 0)
    steered = {"coefficients": [point | {"coefficient": 2.0, "passes_gate": False}]}
    write_json(tmp_path / "steered_teacher.json", steered)
    plot_teachers(teachers, tmp_path / "both.png", tmp_path / "steered_teacher.json")
    png = (tmp_path / "both.png").read_bytes()
    assert png.startswith(b"\x89PNG") and png != (tmp_path / "teachers.png").read_bytes()


def test_a_passing_teacher_is_reported_without_warning(tmp_path):
    good = candidate("discerning", [True] * 9 + [False], [False] * 9 + [True])
    teachers = select(tmp_path, [good], SelectionConfig())
    md, metrics = report(tmp_path, teachers)
    assert "Warning" not in md and "Gate: passed; 1 of 1" in md
    assert "| discerning | 90.0 [" in md and "| pass |" in md
    assert metrics["teachers"]["m"]["discerning"]["discrimination"] == 0.8
