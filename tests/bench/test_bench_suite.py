"""The benchmark suite runs and writes well-formed results (timings are never asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.cost_curve import FITTED, fit_line, fit_plane
from benchmarks.random_model import ARCHITECTURES
from benchmarks.results import HEADER, TABLE_NAME
from benchmarks.step_mfu import PHASES
from benchmarks.step_vs_trl import setting_summary, summarise
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
def test_gpu_row_runs_the_qwen2_architecture_small(tmp_path, monkeypatch):
    """`--small`: a shrunken random Qwen2 model (real vocabulary size) through vLLM rollouts
    and instrumented bf16 OPSA steps, on whatever device this machine has (the Qwen3 one runs
    through HF in tests/bench/test_gpu_script.py)."""
    qwen2 = [name for name, shape in ARCHITECTURES.items() if shape["model_type"] == "qwen2"]
    monkeypatch.setenv("OPSA_BENCH_ARCH", ",".join(qwen2))
    args = ["--threads", "1", "bench", "7", "--small", "--reps", "1", "--warmup", "0"]
    assert main([*args, "--out-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "row7_gpu.json").read_text())
    assert list(result["models"]) == qwen2 and result["backend"] == "vllm"
    for name, measured in result["models"].items():
        assert measured["rollout_tokens_per_s"] > 0, name
        assert measured["rollout"]["by_batch"]["2"]["tokens"] == 2 * 4  # random ids never stop
        training = measured["training"]
        assert 0 < training["mfu"] and training["peak_flops"] > 0
        assert training["steps"] and training["profile_top"]
        assert set(training["split_median_s"]) == set(PHASES)
        assert training["parameters"] > ARCHITECTURES[name]["vocab_size"] * 128  # embeddings


def test_step_comparison_needs_speed_and_memory_in_the_exact_setting():
    def both(ours_seconds, peer_seconds):
        def steps(seconds):
            return [{"seconds": seconds, "cpu_seconds": 2 * seconds, "tokens": 256}] * 3

        return {"opsa": steps(ours_seconds), "trl": steps(peer_seconds), "peak_rss_mb": 9000}

    def row(exact_rss, best_speedup):
        exact = setting_summary(both(4.0, 8.0), {"opsa": exact_rss, "trl": 3000}, 1, 3)
        best = setting_summary(both(8.0 / best_speedup, 8.0), {"opsa": 6000, "trl": 3000}, 1, 3)
        return summarise({"exact": exact, "best": best}, new_tokens=64)

    faster = row(exact_rss=3000, best_speedup=1.0)
    assert faster["ratio"] == 2.0 and faster["memory_ratio"] == 1.0 and faster["met"]
    assert faster["by_setting"]["exact"]["ratio_cpu"] == 2.0
    assert faster["by_setting"]["exact"]["ours"]["tokens_per_cpu_s"] == 32.0
    assert "exact: 2.0× throughput" in faster["ratio_text"]
    assert "best: 1.0× throughput" in faster["ratio_text"]
    assert not row(exact_rss=3300, best_speedup=3.0)["met"]  # judged on the exact setting


def test_fits_recover_known_lines():
    xs = [64, 128, 256, 128, 256, 512, 256, 512, 1024]
    line = fit_line(xs, [0.5 + 0.01 * x for x in xs])
    assert line["a"] == pytest.approx(0.5) and line["b"] == pytest.approx(0.01)
    assert line["r2"] == pytest.approx(1.0) and line["n"] == 9
    noisy = fit_line(xs, [0.5 + 0.01 * x + (0.3 if i % 2 else -0.3) for i, x in enumerate(xs)])
    assert 0.9 < noisy["r2"] < 1.0 and noisy["b"] == pytest.approx(0.01, rel=0.1)
    batches = [2, 2, 2, 4, 4, 4, 8, 8, 8]
    ys = [0.2 + 0.1 * b + 0.003 * x for b, x in zip(batches, xs, strict=True)]
    plane = fit_plane(batches, xs, ys)
    assert (plane["a"], plane["b"], plane["c"]) == pytest.approx((0.2, 0.1, 0.003))
    assert plane["r2"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="every x is the same"):
        fit_line([3, 3, 3], [1, 2, 3])


def _small(rows, embedded_model_dir, out):
    args = ["--threads", "1", "bench", *rows, "--small", "--reps", "1", "--warmup", "0"]
    assert main([*args, "--model-dir", str(embedded_model_dir), "--out-dir", str(out)]) == 0


@pytest.mark.slow
def test_step_vs_trl_small_alternates_in_each_setting(tmp_path, embedded_model_dir):
    """Row 1 at tiny sizes: both sides in one process per setting, each alone for memory
    (`--small` leaves out exact-vllm, whose OPSA side rolls out with vLLM as in best)."""
    _small(["1"], embedded_model_dir, tmp_path)
    result = json.loads((tmp_path / "row1_step-vs-trl.json").read_text())
    assert set(result["by_setting"]) == {"exact", "best"}
    assert result["target"] == "≥1.5× throughput at ≤1× memory (exact setting)"
    assert isinstance(result["met"], bool) and "exact:" in result["ratio_text"]
    assert "best:" in result["ratio_text"]
    assert any("vLLM colocate" in d for d in result["differences"])
    for name, setting in result["by_setting"].items():
        for side in ("ours", "peer"):
            assert setting[side]["tokens_per_s"] > 0 and setting[side]["tokens_per_cpu_s"] > 0
            assert len(setting["steps"][side]) == 1, name
        assert setting["ratio_wall"] > 0 and setting["ratio_cpu"] > 0
        memory = setting["memory"]
        assert memory["ours_peak_rss_mb"] > 0 and memory["peer_peak_rss_mb"] > 0
        assert memory["ratio"] > 0
    assert result["by_setting"]["exact"]["loss_difference"] is None
    for side, diff in result["by_setting"]["best"]["loss_difference"].items():
        assert diff["fp32"] > 0 and diff["tokens"] > 0, side
        assert math.isfinite(diff["relative"]) and diff["absolute"] >= 0


@pytest.mark.slow
def test_cost_curve_small_fits_nine_points(tmp_path, embedded_model_dir):
    """Row 8 at tiny sizes: a 3 × 3 grid of instrumented OPSA steps and its fits."""
    _small(["8"], embedded_model_dir, tmp_path)
    result = json.loads((tmp_path / "row8_cost-curve.json").read_text())
    points = result["points"]
    assert len({(p["batch"], p["new_tokens"]) for p in points}) == len(points) == 9
    for p in points:
        assert p["tokens"] > 0 and p["longest"] > 0
        assert p["seconds"]["step"] > 0 and p["seconds"]["rollout"] > 0
        assert set(p["seconds"]) == set(FITTED)
    fits = [*result["fits"].values(), *result["fits_batch_tokens"].values()]
    fits.append(result["rollout_vs_length"])
    assert set(result["fits"]) == set(FITTED)
    for fit in fits:
        assert fit["n"] == 9
        assert all(math.isfinite(v) for v in fit.values())
    assert result["rollout_better_fit"] in ("length", "tokens") and result["met"] is None
