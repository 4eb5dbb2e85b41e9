"""Row 6: Snakemake's own overhead: planning the paper grid (`snakemake -n`, from an empty
working directory) and a no-op rerun of the embedded pipeline on a completed results tree.

The tree is the smoke config (`.test/config/config.yaml`) run for real once into
`<out-dir>/smoke-tree` (not timed). When the code or the rules changed since, Snakemake would
rerun the changed jobs; the tree is then brought up to date with `--touch` (its outputs are the
real run's), so the timed rerun is a true no-op: it must print "Nothing to be done"."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import ROOT
from benchmarks.suite import Settings
from benchmarks.timing import Timing, repeat
from opsa.errors import InputError

SMOKE = ".test/config/config.yaml"
PAPER = "config/paper.yaml"
TARGET_S = 5.0
NOTHING_TO_DO = "Nothing to be done"


class ChildCPU:
    """CPU seconds (user + system) of each finished child process run, load-independent
    where wall time is not."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, fn: Any) -> Any:
        def timed() -> Any:
            before = _children_cpu()
            out = fn()
            self.seconds.append(_children_cpu() - before)
            return out

        return timed

    def median(self, reps: int) -> float:
        return round(statistics.median(self.seconds[-reps:]), 3)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def snakemake(workdir: Path, configfile: str, *extra: str) -> subprocess.CompletedProcess:
    """`snakemake` on this checkout's workflow, in `workdir`, with `configfile` replacing the
    default config."""
    snakefile = ROOT / "workflow" / "Snakefile"
    if not snakefile.is_file():
        raise InputError(f"bench: {snakefile} not found (run the benchmark from a checkout)")
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile),
               "--directory", str(workdir), "--configfile", str(ROOT / configfile),
               "--replace-workflow-config", *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)


def checked(run: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if run.returncode != 0:
        lines = (run.stderr or run.stdout).strip().splitlines() or ["(no output)"]
        raise InputError(f"bench: {what} failed: {lines[-1]}")
    return run


def completed_tree(settings: Settings) -> Path:
    """The smoke pipeline's results tree, run for real once (reused while it is complete)."""
    tree = settings.out_dir / "smoke-tree"
    tree.mkdir(parents=True, exist_ok=True)
    if NOTHING_TO_DO in checked(snakemake(tree, SMOKE, "-n"), "plan").stdout:
        return tree
    if (tree / "results/report/summary.md").is_file():
        checked(snakemake(tree, SMOKE, "--touch", "--cores", "1"), "touch")
    else:
        checked(snakemake(tree, SMOKE, "--cores", "2"), "smoke pipeline run")
    return tree


def run(settings: Settings) -> dict[str, Any]:
    reps, warmup = settings.reps, settings.warmup
    paper_cpu, noop_cpu = ChildCPU(), ChildCPU()
    with tempfile.TemporaryDirectory(prefix="opsa-bench-plan-") as tmp:
        plan = paper_cpu(lambda: checked(snakemake(Path(tmp), PAPER, "-n"), "plan"))
        paper = repeat(plan, reps, warmup)
    noop: Timing | None = None
    if not settings.small:
        tree = completed_tree(settings)
        noop = repeat(noop_cpu(lambda: _noop(tree)), reps, warmup)
    cpu = {"paper_dry_run_cpu_s": paper_cpu.median(reps)}
    if noop:
        cpu["noop_rerun_cpu_s"] = noop_cpu.median(reps)
    return summarise(paper, noop) | cpu


def _noop(tree: Path) -> None:
    run = checked(snakemake(tree, SMOKE, "--cores", "1"), "no-op rerun")
    if NOTHING_TO_DO not in run.stdout + run.stderr:
        raise InputError(f"bench: the rerun in {tree} was not a no-op")


def summarise(paper: Timing, noop: Timing | None) -> dict[str, Any]:
    noop_text = f"{noop.median:.1f} s" if noop else "not run (--small)"
    times = [paper.median] + ([noop.median] if noop else [])
    return {
        "measure": "Snakemake overhead: `snakemake -n` on the paper grid; no-op rerun of the "
        "embedded (smoke) pipeline",
        "ours": f"paper dry-run {paper.median:.1f} s; no-op rerun {noop_text} (wall)",
        "peer": "–",
        "ratio": None,
        "ratio_text": f"{max(times) / TARGET_S:.2f}× the 5 s budget (worst of the two)",
        "target": "< 5 s each",
        "met": bool(max(times) < TARGET_S) if noop else None,
        "paper_dry_run": paper.to_dict(),
        "noop_rerun": noop.to_dict() if noop else None,
    }
