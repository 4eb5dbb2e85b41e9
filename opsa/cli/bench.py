"""`python -m opsa bench <row>|all`: the benchmark suite, results under results/bench/ as one
JSON file per row and table.md.

The suite is the top-level `benchmarks` package of the repository (`python -m benchmarks ...`
runs the same), not part of the installed library: this step imports it from the checkout the
package lives in (an editable install), else from the working directory, and says so in one
line where there is none."""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path
from types import ModuleType

from opsa.cli import step
from opsa.errors import InputError


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
    suite = benchmark_suite()
    settings = suite.Settings(
        model_dir=a.model_dir.expanduser(),
        out_dir=a.out_dir,
        reps=a.reps,
        warmup=a.warmup,
        threads=a.threads or 2,
        small=a.small,
        command=_command(a),
    )
    suite.check_reps(settings, a.allow_few_reps or a.small)
    suite.run_rows(suite.parse_rows(a.rows), settings)


def _command(a: argparse.Namespace) -> str:
    """The command line that reproduces this run (recorded with every result)."""
    words = ["python", "-m", "opsa"] + (["--threads", str(a.threads)] if a.threads else [])
    words += ["bench", *a.rows, "--model-dir", str(a.model_dir), "--out-dir", str(a.out_dir)]
    words += ["--reps", str(a.reps), "--warmup", str(a.warmup)]
    words += ["--small"] * a.small + ["--allow-few-reps"] * a.allow_few_reps
    return shlex.join(words)


def benchmark_suite() -> ModuleType:
    """`benchmarks.suite` from the checkout this `opsa` package lives in (the parent of the
    package's directory holds `benchmarks/`), else from wherever `benchmarks` imports."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "benchmarks" / "suite.py").is_file() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        return importlib.import_module("benchmarks.suite")
    except ModuleNotFoundError as e:
        if e.name not in ("benchmarks", "benchmarks.suite"):
            raise
        raise InputError(
            "the benchmark suite (benchmarks/) is not part of the installed library: run "
            "`python -m opsa bench` from a checkout of the repository"
        ) from None
