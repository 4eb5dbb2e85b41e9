"""The benchmark suite runs and writes well-formed results (timings are never asserted)."""

from __future__ import annotations

import json

import pytest

from opsa.bench.results import HEADER, TABLE_NAME
from opsa.bench.step_vs_trl import summarise
from opsa.bench.suite import ROWS, parse_rows
from opsa.cli import main
from opsa.errors import InputError


def test_rows_by_number_name_or_all():
    assert parse_rows(["all"]) == list(ROWS)
    assert parse_rows(["4", "gpu"]) == [4, 7]
    with pytest.raises(InputError, match="unknown row 'fastest'"):
        parse_rows(["fastest"])


def test_fewer_than_five_reps_need_the_ci_flag(tmp_path, capsys):
    assert main(["bench", "7", "--reps", "2", "--out-dir", str(tmp_path)]) == 1
    assert "median of at least 5 repetitions" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_small_run_writes_one_json_per_row_and_the_table(tmp_path):
    """Rows 4 (chunked against naive loss, tiny sizes, each side in its own process) and 7."""
    args = ["--threads", "1", "bench", "4", "7", "--small", "--reps", "1", "--warmup", "0"]
    assert main([*args, "--out-dir", str(tmp_path)]) == 0
    results = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("row*.json")}
    assert set(results) == {"row4_divergence-memory.json", "row7_gpu.json"}
    for result in results.values():
        machine = result["machine"]
        assert machine["cores"] >= 1 and machine["torch"] and machine["torch_threads"] == 1
        assert len(machine["load_average"]) == 3 and result["command"].startswith("python -m")
        assert {"measure", "ours", "ratio_text", "target", "met"} <= set(result)
    memory = results["row4_divergence-memory.json"]
    for case in memory["cases"].values():  # the same loss and gradients on both sides
        assert case["same_value"], case
        assert case["chunked"]["timing"]["reps"] == 1 and case["naive"]["peak_rss_mb"] > 0
    assert results["row7_gpu.json"]["met"] is None
    table = (tmp_path / TABLE_NAME).read_text().splitlines()
    assert table[:2] == HEADER and table[2].startswith("| 4 |") and table[3].startswith("| 7 |")
    assert any(line.startswith("Command: `python -m opsa --threads 1 bench 4 7") for line in table)


def test_step_comparison_needs_speed_and_memory():
    def side(tokens_per_step, seconds, rss):
        return {"steps": [{"seconds": seconds, "tokens": tokens_per_step}] * 3, "peak_rss_mb": rss}

    faster = summarise(side(256, 4.0, 3000), side(256, 8.0, 3000), warmup=1, new_tokens=64)
    assert faster["ratio"] == 2.0 and faster["memory_ratio"] == 1.0 and faster["met"]
    heavier = summarise(side(256, 4.0, 3300), side(256, 8.0, 3000), warmup=1, new_tokens=64)
    assert not heavier["met"]
