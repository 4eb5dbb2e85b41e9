"""`python -m opsa bench <row>|all`: the benchmark suite (opsa/bench), results under
results/bench/ as one JSON file per row and table.md."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from opsa.cli import step


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("rows", nargs="+", help="'all', or row numbers / names (1 or step-vs-trl ...)")
    p.add_argument(
        "--model-dir",
        type=Path,
        default=Path("results/models/smollm2-135m/base"),
        help="the prepared embedded model (what `prepare_model` writes)",
    )
    p.add_argument("--out-dir", type=Path, default=Path("results/bench"))
    p.add_argument("--reps", type=int, default=5, help="measured repetitions (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured runs before them")
    p.add_argument("--small", action="store_true", help="tiny sizes: a smoke run (CI)")
    p.add_argument("--allow-few-reps", action="store_true", help="CI's smoke run only")


@step("bench", _bench_args)
def _bench(a: argparse.Namespace) -> None:
    """Benchmarks against TRL, the machine's matmul peak, and naive baselines."""
    from opsa.bench.suite import Settings, check_reps, parse_rows, run_rows

    settings = Settings(
        model_dir=a.model_dir.expanduser(),
        out_dir=a.out_dir,
        reps=a.reps,
        warmup=a.warmup,
        threads=a.threads or 2,
        small=a.small,
        command=_command(a),
    )
    check_reps(settings, a.allow_few_reps or a.small)
    run_rows(parse_rows(a.rows), settings)


def _command(a: argparse.Namespace) -> str:
    """The command line that reproduces this run (recorded with every result)."""
    words = ["python", "-m", "opsa"] + (["--threads", str(a.threads)] if a.threads else [])
    words += ["bench", *a.rows, "--model-dir", str(a.model_dir), "--out-dir", str(a.out_dir)]
    words += ["--reps", str(a.reps), "--warmup", str(a.warmup)]
    words += ["--small"] * a.small + ["--allow-few-reps"] * a.allow_few_reps
    return shlex.join(words)
