"""The training-set-size sweep's table and plot, from evaluation records."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsa.errors import InputError
from opsa.records import read_json
from opsa.report.size_sweep import markdown_section, plot_size_sweep, size_sweep
from tests.report.test_report_summary import record, write_records


def records(variant: str, harmful: float, over: float, reasoning: float) -> list[dict]:
    return [
        record(variant, "eval_harmful", "harmbench", harmful, [harmful - 0.1, harmful + 0.1]),
        record(variant, "eval_overrefusal", "xstest", over, [over - 0.05, over + 0.05]),
        record(variant, "eval_reasoning", "gsm8k", reasoning, [reasoning - 0.1, reasoning + 0.1]),
    ]


def test_each_point_gets_s_and_r_and_the_report_shows_them(tmp_path: Path) -> None:
    paths = write_records(
        tmp_path,
        [
            *records("base", 0.9, 0.1, 0.3),
            *records("opsa", 0.3, 0.1, 0.32),
            *records("opsa-frac25", 0.5, 0.1, 0.31),
        ],
    )
    points = {"base": ("base", 0.0), "opsa": ("opsa", 1.0), "opsa-frac25": ("opsa", 0.25)}
    out = tmp_path / "analysis/m/size_sweep.json"
    size_sweep(paths, points, out)
    rows = {r["variant"]: r for r in read_json(out)["rows"]}
    assert rows["opsa"]["S"]["value"] == pytest.approx(1 - (0.3 + 0.1) / 2)
    assert rows["opsa-frac25"]["S"]["value"] == pytest.approx(0.7)
    assert rows["opsa-frac25"]["R"]["value"] == pytest.approx(0.31)
    assert rows["base"]["fraction"] == 0.0 and rows["opsa-frac25"]["fraction"] == 0.25
    plot = tmp_path / "size_sweep/m.png"
    plot_size_sweep(out, plot)
    assert plot.read_bytes()[:4] == b"\x89PNG"
    section = markdown_section([out])
    assert "## Training-set size" in section and "| opsa | 25% | 70.0 [" in section


def test_a_point_without_evaluations_is_named(tmp_path: Path) -> None:
    paths = write_records(tmp_path, records("base", 0.9, 0.1, 0.3))
    with pytest.raises(InputError, match="variant 'opsa-frac10'"):
        size_sweep(paths, {"opsa-frac10": ("opsa", 0.1)}, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()
