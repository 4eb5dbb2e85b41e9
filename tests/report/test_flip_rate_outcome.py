"""Flip rate against outcome: harmful compliance of each OPSA variant against its training
context's TFR, Spearman's rho, plot and summary section."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from opsa.errors import InputError
from opsa.records import read_json
from opsa.report.flip_rate_outcome import (
    flip_rate_outcome,
    markdown_section,
    plot_flip_rate_outcome,
    spearman,
)
from tests.report.test_report_summary import record, write_records

TFR = {"best": 0.8, "mid": 0.4, "poor": 0.1}


def contexts(tmp_path: Path) -> dict[str, Path]:
    found = {}
    for variant, context in [("opsa", "best"), ("opsa-tfrmiddle", "mid"), ("opsa-tfrlast", "poor")]:
        path = tmp_path / f"{variant}.json"
        path.write_text(json.dumps({"harmful": {"id": context}, "benign": None}))
        found[variant] = path
    return found


def test_higher_flip_rate_safer_model_gives_rho_minus_one(tmp_path: Path) -> None:
    ranking = tmp_path / "ranking.csv"
    pd.DataFrame({"id": list(TFR), "tfr": list(TFR.values())}).to_csv(ranking, index=False)
    evals = write_records(
        tmp_path,
        [
            record("base", "eval_harmful", "harmbench", 0.9, [0.8, 1.0]),
            record("opsa", "eval_harmful", "harmbench", 0.3, [0.2, 0.4]),
            record("opsa-tfrmiddle", "eval_harmful", "harmbench", 0.5, [0.4, 0.6]),
            record("opsa-tfrlast", "eval_harmful", "harmbench", 0.8, [0.7, 0.9]),
            record("opsa", "eval_reasoning", "gsm8k", 0.3, None),
        ],
    )
    out = tmp_path / "analysis/m/flip_rate_outcome.json"
    flip_rate_outcome(evals, contexts(tmp_path), ranking, out)
    data = read_json(out)
    assert data["spearman"] == pytest.approx(-1.0)
    rows = {r["variant"]: r for r in data["rows"]}
    assert rows["opsa-tfrmiddle"]["tfr"] == 0.4 and rows["base"]["context"] is None
    assert rows["opsa"]["harmful_compliance"]["value"] == pytest.approx(0.3)
    plot = tmp_path / "plot.png"
    plot_flip_rate_outcome(out, plot)
    assert plot.read_bytes()[:4] == b"\x89PNG"
    section = markdown_section([out, out])
    assert "Spearman rho -1.00" in section and "Pooled over 2 policies" in section


def test_spearman_is_none_for_ties_or_too_few_points() -> None:
    point = {"tfr": 0.5, "harmful_compliance": {"value": 0.2}}
    assert spearman([point, point, point]) is None
    assert spearman([point, point]) is None


def test_an_unranked_context_is_named(tmp_path: Path) -> None:
    ranking = tmp_path / "ranking.csv"
    pd.DataFrame({"id": ["best"], "tfr": [0.8]}).to_csv(ranking, index=False)
    evals = write_records(
        tmp_path,
        [
            record(v, "eval_harmful", "harmbench", 0.5, None)
            for v in ("base", "opsa", "opsa-tfrmiddle", "opsa-tfrlast")
        ],
    )
    with pytest.raises(InputError, match="context 'mid'"):
        flip_rate_outcome(evals, contexts(tmp_path), ranking, tmp_path / "x.json")
