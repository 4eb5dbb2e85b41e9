"""The benchmark suite runs and writes well-formed results (timings are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.random_model import ARCHITECTURES
from benchmarks.results import HEADER, TABLE_NAME
from benchmarks.step_mfu import PHASES
from benchmarks.step_vs_trl import summarise
from benchmarks.suite import ROWS, parse_rows
from opsa.cli import bench as bench_cli
from opsa.cli import main
from opsa.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_rows_by_number_name_or_all():
    assert parse_rows(["all"]) == list(ROWS)
    assert parse_rows(["4", "gpu"]) == [4, 7]
    with pytest.raises(InputError, match="unknown row 'fastest'"):
        parse_rows(["fastest"])


def test_fewer_than_five_reps_need_the_ci_flag(tmp_path, capsys):
    assert main(["bench", "7", "--reps", "2", "--out-dir", str(tmp_path)]) == 1
    assert "median of at least 5 repetitions" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_small_run_writes_its_json_and_the_table(tmp_path):
    """Row 4 at tiny sizes: chunked against naive loss, each side in its own process."""
    args = ["--threads", "1", "bench", "4", "--small", "--reps", "1", "--warmup", "0"]
    assert main([*args, "--out-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "row4_divergence-memory.json").read_text())
    machine = result["machine"]
    assert machine["cores"] >= 1 and machine["torch"] and machine["torch_threads"] == 1
    assert len(machine["load_average"]) == 3 and result["command"].startswith("python -m")
    assert {"measure", "ours", "ratio_text", "target", "met"} <= set(result)
    for case in result["cases"].values():  # the same loss and gradients on both sides
        assert case["same_value"], case
        assert case["chunked"]["timing"]["reps"] == 1 and case["naive"]["peak_rss_mb"] > 0
    table = (tmp_path / TABLE_NAME).read_text().splitlines()
    assert table[:2] == HEADER and table[2].startswith("| 4 |")
    assert any(line.startswith("Command: `python -m opsa --threads 1 bench 4") for line in table)


def test_python_m_benchmarks_is_opsa_bench(tmp_path):
    """`python -m benchmarks ...` from the checkout runs `opsa bench ...` (`--threads` where it
    stands), its rows and errors included."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "benchmarks", "7", "--threads", "1", "--reps", "2"]
    command += ["--out-dir", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("opsa bench: error: bench: --reps 2:")
    assert not out.exists()


def test_opsa_bench_without_the_suite_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    """An installed library (no checkout beside it, `benchmarks` not importable)."""
    monkeypatch.setattr(bench_cli, "__file__", str(tmp_path / "site" / "opsa" / "cli" / "x.py"))
    for name in [m for m in sys.modules if m == "benchmarks" or m.startswith("benchmarks.")]:
        monkeypatch.delitem(sys.modules, name)
    paths = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    monkeypatch.setattr(sys, "path", paths)
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "4", "--out-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "opsa bench: error: the benchmark suite (benchmarks/) is not part of the installed "
        "library: run `python -m opsa bench` from a checkout of the repository"
    ]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU answer of row 7")
def test_gpu_row_without_a_gpu_says_so(tmp_path):
    assert main(["bench", "7", "--out-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "row7_gpu.json").read_text())
    assert result["ours"] == "not measured: torch sees no GPU on this machine"
    assert result["met"] is None and result["gpu"] is None


@pytest.mark.slow
def test_gpu_row_runs_both_architectures_small(tmp_path):
    """`--small`: shrunken random Qwen3 and Qwen2 models (real vocabulary size) through vLLM
    rollouts and instrumented bf16 OPSA steps, on whatever device this machine has."""
    args = ["--threads", "1", "bench", "7", "--small", "--reps", "1", "--warmup", "0"]
    assert main([*args, "--out-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "row7_gpu.json").read_text())
    assert set(result["models"]) == set(ARCHITECTURES)
    for name, measured in result["models"].items():
        assert measured["rollout_tokens_per_s"] > 0, name
        assert measured["rollout"]["by_batch"]["2"]["tokens"] == 2 * 4  # random ids never stop
        training = measured["training"]
        assert 0 < training["mfu"] and training["peak_flops"] > 0
        assert training["steps"] and training["profile_top"]
        assert set(training["split_median_s"]) == set(PHASES)
        assert training["parameters"] > ARCHITECTURES[name]["vocab_size"] * 128  # embeddings


def test_step_comparison_needs_speed_and_memory():
    def side(tokens_per_step, seconds, rss):
        return {"steps": [{"seconds": seconds, "tokens": tokens_per_step}] * 3, "peak_rss_mb": rss}

    faster = summarise(side(256, 4.0, 3000), side(256, 8.0, 3000), warmup=1, new_tokens=64)
    assert faster["ratio"] == 2.0 and faster["memory_ratio"] == 1.0 and faster["met"]
    heavier = summarise(side(256, 4.0, 3300), side(256, 8.0, 3000), warmup=1, new_tokens=64)
    assert not heavier["met"]
