"""Row 8: OPSA's step time against batch × completion length, fitted per phase.

One process (apart from the suite's) runs a 3 × 3 grid of OPSA training steps: batch 2/4/8 ×
at most 32/64/128 new tokens (1/2/3 × 2/4/8 under --small). Each point is built afresh (row 1's
`OPSAStepper`: the pipeline's own training, student, teacher and optimizer new) and runs
--warmup steps, thrown away, then 2 measured steps (fewer with --reps 1), in row 1's exact
setting: fp32, no gradient checkpointing, HF generate rollouts, so the curve does not depend on
the vLLM build. Each step is split into row 2's phases by its instrumentation (rollout, teacher,
student forward, optimizer; loss+backward is the rest of the step). A point is the median of
its measured steps.

Fits, ordinary least squares over the 9 points: every phase and the whole step against tokens,
seconds = a + b · tokens, tokens = completion tokens trained in the step (batch × length where
no completion stops early), with R². The forward passes also read every prompt, a cost per
sequence, so each is also fitted as seconds = a + b · batch + c · tokens. Decoding is expected
nearly flat in batch and linear in length, so the rollout is also fitted against length alone
(the step's longest completion: its decode steps); the fit with the higher R² is named the
better one.
"""

from __future__ import annotations

import gc
import math
import statistics
import tempfile
import time
from collections import defaultdict
from typing import Any

from benchmarks import inputs
from benchmarks.isolate import run_isolated
from benchmarks.step_mfu import PHASES
from benchmarks.suite import Settings

GRID = {"batch": (2, 4, 8), "new_tokens": (32, 64, 128)}
SMALL_GRID = {"batch": (1, 2, 3), "new_tokens": (2, 4, 8)}
POINT_REPS = 2  # measured steps per point after --warmup: the grid takes ~5-8 min on 2 cores
FITTED = (*PHASES, "step")


def run(settings: Settings) -> dict[str, Any]:
    grid = SMALL_GRID if settings.small else GRID
    reps = min(settings.reps, POINT_REPS)
    steps = settings.warmup + reps
    points = [[b, n] for b in grid["batch"] for n in grid["new_tokens"]]
    kwargs = {"model_dir": str(settings.model_dir), "points": points, "steps": steps,
              "pairs": inputs.mixed_prompts(max(grid["batch"]) * steps)}  # fmt: skip
    side = run_isolated(
        "benchmarks.cost_curve:curve_side", kwargs, settings.threads, settings.side_log(8, "opsa")
    )
    return summarise(side, settings.warmup, reps)


def summarise(side: dict[str, Any], warmup: int, reps: int) -> dict[str, Any]:
    points = [point_summary(p, warmup) for p in side["points"]]
    tokens = [p["tokens"] for p in points]
    fits = {phase: fit_line(tokens, [p["seconds"][phase] for p in points]) for phase in FITTED}
    batches = [p["batch"] for p in points]
    per_sequence = {
        phase: fit_plane(batches, tokens, [p["seconds"][phase] for p in points]) for phase in FITTED
    }
    by_length = fit_line([p["longest"] for p in points], [p["seconds"]["rollout"] for p in points])
    better = "length" if by_length["r2"] > fits["rollout"]["r2"] else "tokens"
    step, rollout = fits["step"], by_length if better == "length" else fits["rollout"]
    seq = per_sequence["step"]
    unit = "new-token position" if better == "length" else "token"
    per_phase = "; ".join(
        f"{p}: {f['a']:.3f} s + {f['b'] * 1e3:.3f} ms/token (R² {f['r2']:.3f})"
        for p, f in fits.items()
    )
    plane = "; ".join(
        f"{p}: {f['a']:.3f} s + {f['b']:.3f} s/sequence + {f['c'] * 1e3:.3f} ms/token "
        f"(R² {f['r2']:.3f})"
        for p, f in per_sequence.items()
    )
    return {
        "measure": "OPSA step seconds against batch × completion length (3 × 3 grid, fp32, HF "
        "rollouts): least-squares fit per phase, seconds = a + b · completion tokens",
        "ours": f"step ≈ {step['a']:.2f} s + {step['b'] * 1e3:.2f} ms × tokens "
        f"(R² {step['r2']:.3f}), ≈ {seq['a']:.2f} s + {seq['b']:.3f} s × batch + "
        f"{seq['c'] * 1e3:.2f} ms × tokens (R² {seq['r2']:.3f}); rollout ≈ {rollout['a']:.2f} s + "
        f"{rollout['b'] * 1e3:.2f} ms × {unit} (R² {rollout['r2']:.3f})",
        "peer": "–",
        "ratio_text": f"step fit R² {step['r2']:.3f}; rollout fits length (R² "
        f"{by_length['r2']:.3f}) {'better' if better == 'length' else 'worse'} than tokens "
        f"(R² {fits['rollout']['r2']:.3f})",
        "target": "– (a cost model: predict a step from batch and length)",
        "met": None,
        "note": "fits against completion tokens per step: " + per_phase + "; rollout against "
        f"the longest completion: {by_length['a']:.3f} s + {by_length['b'] * 1e3:.3f} ms/position "
        f"(R² {by_length['r2']:.3f}); with a cost per sequence: " + plane,
        "setting": "exact: fp32, no gradient checkpointing, HF generate rollouts; one process "
        f"for all points, each built afresh; {warmup} warm-up + {reps} measured steps per point",
        "fits": fits,
        "fits_batch_tokens": per_sequence,
        "rollout_vs_length": by_length,
        "rollout_better_fit": better,
        "points": points,
    }


def point_summary(point: dict[str, Any], warmup: int) -> dict[str, Any]:
    """Medians over a point's measured steps: completion tokens, longest completion, the
    seconds of each phase and of the step."""
    steps = point["steps"][warmup:]
    return {
        "batch": point["batch"],
        "new_tokens": point["new_tokens"],
        "tokens": statistics.median(s["tokens"] for s in steps),
        "longest": statistics.median(s["longest"] for s in steps),
        "seconds": {p: round(statistics.median(s[p] for s in steps), 4) for p in FITTED},
        "cpu_seconds": round(statistics.median(s["cpu_seconds"] for s in steps), 4),
        "steps": point["steps"],
        "rss_mb_after": point["rss_mb_after"],
    }


def fit_line(xs: list[float], ys: list[float]) -> dict[str, float]:
    """Ordinary least squares y = a + b·x: intercept a, slope b, R² (1 where y is constant and
    fitted exactly) and the number of points."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"fit_line: {len(xs)} x against {len(ys)} y (at least 2 each)")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("fit_line: every x is the same")
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - my) ** 2 for y in ys)
    r2 = 1.0 - ss_res / ss_tot if ss_tot else (1.0 if math.isclose(ss_res, 0.0) else 0.0)
    return {"a": a, "b": b, "r2": r2, "n": len(xs)}


def fit_plane(x1: list[float], x2: list[float], ys: list[float]) -> dict[str, float]:
    """Ordinary least squares y = a + b·x1 + c·x2: a, b, c, R² and the number of points."""
    import numpy as np

    if not len(x1) == len(x2) == len(ys) or len(ys) < 3:
        raise ValueError(f"fit_plane: {len(x1)}, {len(x2)}, {len(ys)} values (at least 3 each)")
    design = np.column_stack([np.ones(len(ys)), x1, x2])
    y = np.asarray(ys, dtype=float)
    (a, b, c), _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    if rank < 3:
        raise ValueError("fit_plane: x1 and x2 do not vary independently")
    ss_res = float(((y - design @ np.array([a, b, c])) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot else (1.0 if math.isclose(ss_res, 0.0) else 0.0)
    return {"a": float(a), "b": float(b), "c": float(c), "r2": r2, "n": len(ys)}


def curve_side(
    model_dir: str, points: list[list[int]], steps: int, pairs: list[list[str]]
) -> dict[str, Any]:
    """`steps` instrumented OPSA steps at each (batch, max new tokens) point, in this order."""
    import torch

    from benchmarks.machine import rss_mb
    from benchmarks.step_mfu import PhaseClock, instrument
    from benchmarks.step_vs_trl import OPSAStepper, opsa_config, prompt_items
    from opsa.models.runtime import Runtime, using

    clock = PhaseClock(profile_step=-1)  # never profiles
    instrument(clock)
    out = []
    with using(Runtime(backend="hf")):
        for batch, new_tokens in points:
            items, contexts = prompt_items(pairs[: batch * steps])
            config = opsa_config(steps, new_tokens, torch.get_num_threads(), batch)
            with tempfile.TemporaryDirectory(prefix="opsa-bench-curve-") as tmp:
                stepper = OPSAStepper(model_dir, items, contexts, config, tmp)
                longest = _record_longest(stepper)
                measured = []
                for _ in range(steps):
                    clock.now, clock.step_start = defaultdict(float), time.perf_counter()
                    row = stepper.step()
                    phases = clock.steps[-1]
                    fixed = sum(phases.get(p, 0.0) for p in PHASES if p != "loss_backward")
                    measured.append(
                        {p: round(phases.get(p, 0.0), 4) for p in PHASES}
                        | {"loss_backward": round(row["seconds"] - fixed, 4),
                           "step": row["seconds"], "cpu_seconds": row["cpu_seconds"],
                           "tokens": row["tokens"], "longest": longest[-1]}
                    )  # fmt: skip
            del stepper
            gc.collect()
            out.append({"batch": batch, "new_tokens": new_tokens, "steps": measured,
                        "rss_mb_after": round(rss_mb(), 1)})  # fmt: skip
    return {"points": out}


def _record_longest(stepper: Any) -> list[int]:
    """The longest completion of each rollout the stepper's task samples (its decode steps)."""
    rollouts, longest = stepper.task.rollouts, []
    sample = rollouts.sample

    def recorded(*args: Any, **kwargs: Any) -> Any:
        completions = sample(*args, **kwargs)
        longest.append(max(map(len, completions), default=0))
        return completions

    rollouts.sample = recorded
    return longest
