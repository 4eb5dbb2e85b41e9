"""Row 2: the OPSA training step against the machine's limit.

In one process per precision (fp32; bf16 autocast over fp32 master weights, training's
`mixed_precision: bf16`): the matmul peak of this machine in that precision (square matmuls,
best median over a few sizes, same threads), then the row-1 OPSA step in that precision,
instrumented from outside the training code:
rollout time (the rollout call), teacher forward (`OPSATask.teacher_hidden`), student forward
(the loss-hidden forward with grad), optimizer (its step); the rest of the step is the
chunked loss, the backward pass and clipping ("loss+backward"). Model FLOPs, by the usual
convention (N = parameters, tied embeddings counted once; attention ignored): student
6·N·tokens, teacher 2·N·tokens over the real (unpadded) tokens of each batch (for the teacher
those it computes: a reused prompt prefix is not counted); generation
2·N·(prompt + generated tokens), reported separately. One extra step after the measured ones
runs under torch.profiler; its top entries by self CPU time are kept.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks import inputs
from benchmarks.isolate import run_isolated
from benchmarks.step_vs_trl import BATCH, opsa_config, write_opsa_inputs
from benchmarks.suite import Settings

PHASES = ("rollout", "teacher", "student_forward", "loss_backward", "optimizer")
TARGET = 0.6


PRECISIONS = {"no": "float32", "bf16": "bfloat16"}  # training's mixed_precision -> matmul dtype


def run(settings: Settings) -> dict[str, Any]:
    new_tokens = 8 if settings.small else 64
    steps = settings.warmup + settings.reps + 1  # the last one is profiled, not timed
    sides = {}
    for precision in PRECISIONS:
        kwargs = {"model_dir": str(settings.model_dir),
                  "pairs": inputs.mixed_prompts(BATCH * steps), "steps": steps,
                  "max_new_tokens": new_tokens, "mixed_precision": precision,
                  "matmul_sizes": [256, 512] if settings.small else [1024, 2048, 3072]}  # fmt: skip
        log = settings.side_log(2, f"opsa_{precision}")
        side = run_isolated("benchmarks.step_mfu:mfu_side", kwargs, settings.threads, log)
        sides[precision] = precision_summary(side, settings.warmup, settings.reps)
    return summarise(sides)


def precision_summary(side: dict[str, Any], warmup: int, reps: int) -> dict[str, Any]:
    """Median FLOP/s of the fwd/bwd part and of generation, their share of the peak, the
    median time split, and the profiled step's top entries."""
    steps = side["steps"][warmup : warmup + reps]
    n = side["parameters"]
    fwd_bwd = statistics.median(
        (6 * n * s["student_tokens"] + 2 * n * s["teacher_tokens"])
        / (s["teacher"] + s["student_forward"] + s["loss_backward"])
        for s in steps
    )
    generation = statistics.median(2 * n * s["rollout_tokens"] / s["rollout"] for s in steps)
    return {
        "peak_flops": side["matmul_peak_flops"],
        "fwd_bwd_flops": round(fwd_bwd),
        "mfu": round(fwd_bwd / side["matmul_peak_flops"], 3),
        "generation_flops": round(generation),
        "generation_mfu": round(generation / side["matmul_peak_flops"], 3),
        "step_s": round(statistics.median(s["seconds"] for s in steps), 3),
        "split_median_s": {p: round(statistics.median(s[p] for s in steps), 3) for p in PHASES},
        "parameters": n,
        "steps": steps,
        "profile_top": side["profile_top"],
    }


def summarise(sides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def gflops(x: float) -> str:
        return f"{x / 1e9:.1f}"

    ours = "; ".join(
        f"{PRECISIONS[p]}: fwd/bwd {gflops(s['fwd_bwd_flops'])} GFLOP/s ({s['mfu']:.0%}), "
        f"generation {gflops(s['generation_flops'])} ({s['generation_mfu']:.0%})"
        for p, s in sides.items()
    )
    peaks = "; ".join(f"{PRECISIONS[p]} {gflops(s['peak_flops'])}" for p, s in sides.items())
    splits = []
    for p, s in sides.items():
        split, total = s["split_median_s"], sum(s["split_median_s"].values())
        parts = ", ".join(f"{k} {v:.2f} s ({v / total:.0%})" for k, v in split.items())
        splits.append(f"{PRECISIONS[p]} step {s['step_s']:.2f} s: {parts}")
    fp32 = sides["no"]["mfu"]
    return {
        "measure": "OPSA step: model FLOP/s (teacher fwd 2N, student fwd+bwd 6N per token) "
        "as a share of the matmul peak measured in the same process, same precision",
        "ours": ours,
        "peer": f"matmul peak GFLOP/s: {peaks}",
        "ratio": fp32,
        "ratio_text": " / ".join(f"{s['mfu']:.0%}" for s in sides.values()) + " of peak (fwd/bwd)",
        "target": "≥60% of peak (fwd/bwd)",
        "met": bool(all(s["mfu"] >= TARGET for s in sides.values())),
        "note": "median time split: " + "; ".join(splits),
        "precisions": sides,
    }


def matmul_peak(dtype: str, sizes: list[int], reps: int = 5) -> float:
    """Best median FLOP/s of square matmuls in `dtype` on the device training uses (the GPU
    where there is one, else this process's CPU threads)."""
    import torch

    from benchmarks.timing import repeat

    device = "cuda" if torch.cuda.is_available() else "cpu"
    best = 0.0
    for n in sizes:
        a, b = (torch.randn(n, n, device=device).to(getattr(torch, dtype)) for _ in range(2))

        def mm(a: torch.Tensor = a, b: torch.Tensor = b) -> None:
            torch.mm(a, b)
            synchronize()

        best = max(best, 2 * n**3 / repeat(mm, reps, warmup=2).median)
    return best


def synchronize() -> None:
    """Wait for the GPU's queued work, so a clock read after it counts it (no-op on a CPU)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class PhaseClock:
    """Seconds and token counts per phase, cut into steps at each optimizer step."""

    def __init__(self, profile_step: int) -> None:
        self.now: dict[str, float] = defaultdict(float)
        self.steps: list[dict[str, float]] = []
        self.step_start = 0.0
        self.profile_step = profile_step
        self.profiler: Any = None
        self.profile_top: list[dict[str, Any]] = []

    def add(self, key: str, value: float) -> None:
        self.now[key] += value

    def timed(self, fn: Any, phase: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not self.step_start:
                self.step_start = time.perf_counter()
            synchronize()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                synchronize()
                self.add(phase, time.perf_counter() - start)

        return wrapper

    def step_done(self) -> None:
        synchronize()
        step = dict(self.now) | {"seconds": time.perf_counter() - self.step_start}
        fixed = sum(step.get(p, 0.0) for p in PHASES if p != "loss_backward")
        step["loss_backward"] = step["seconds"] - fixed
        self.steps.append(step)
        self.now, self.step_start = defaultdict(float), time.perf_counter()
        self._profile(len(self.steps))

    def _profile(self, done: int) -> None:
        """Profile the last step; its top entries by self time on the device that computes
        (the GPU's kernels where there is one, else the CPU's operators)."""
        import torch

        activity = torch.profiler.ProfilerActivity
        gpu = torch.cuda.is_available()
        if done == self.profile_step - 1:
            kinds = [activity.CPU, activity.CUDA] if gpu else [activity.CPU]
            self.profiler = torch.profiler.profile(activities=kinds)
            self.profiler.__enter__()
        elif done == self.profile_step and self.profiler is not None:
            self.profiler.__exit__(None, None, None)
            key = "self_device_time_total" if gpu else "self_cpu_time_total"
            events = sorted(
                self.profiler.key_averages(), key=lambda e: getattr(e, key), reverse=True
            )
            total = sum(getattr(e, key) for e in events) or 1
            self.profile_top = [
                {"name": e.key, "self_s": round(getattr(e, key) / 1e6, 3),
                 "share": round(getattr(e, key) / total, 3), "calls": e.count}
                for e in events[:12]
            ]  # fmt: skip


def instrument(clock: PhaseClock) -> None:
    """Wrap the training code's rollouts, hidden-state forward and optimizer construction (in
    this benchmark process only)."""
    from opsa.training import loop, onpolicy, rollout

    rollout.Rollouts.sample = _counting_rollout(clock, rollout.Rollouts.sample)
    onpolicy.OPSATask.teacher_hidden = _counting_teacher(clock, onpolicy.OPSATask.teacher_hidden)
    onpolicy.loss_hidden = _counting_student(clock, onpolicy.loss_hidden)
    build = loop.build_optimizer

    def build_timed(*args: Any, **kwargs: Any) -> Any:
        optimizer = build(*args, **kwargs)
        step = clock.timed(optimizer.step, "optimizer")

        def step_and_cut(*a: Any, **k: Any) -> Any:
            out = step(*a, **k)
            clock.step_done()
            return out

        optimizer.step = step_and_cut
        return optimizer

    loop.build_optimizer = build_timed


def _counting_rollout(clock: PhaseClock, sample: Any) -> Any:
    timed = clock.timed(sample, "rollout")

    def rollout(self: Any, student: Any, prompt_ids: list[list[int]], *args: Any) -> Any:
        completions = timed(self, student, prompt_ids, *args)
        tokens = sum(map(len, prompt_ids)) + sum(map(len, completions))
        clock.add("rollout_tokens", tokens)
        return completions

    return rollout


def _counting_teacher(clock: PhaseClock, method: Any) -> Any:
    """The teacher's time, and the tokens it computes (a reused prompt prefix not counted)."""
    timed = clock.timed(method, "teacher")

    def teacher_hidden(self: Any, batch: Any, labels: list[str]) -> Any:
        reused = self.teacher_prefix.prefix if self.teacher_prefix is not None else {}
        skipped = sum(len(reused.get(label, ())) for label in labels)
        clock.add("teacher_tokens", float(batch.attention_mask.sum()) - skipped)
        return timed(self, batch, labels)

    return teacher_hidden


def _counting_student(clock: PhaseClock, fn: Any) -> Any:
    """The student's forwards (with grad; the teacher's, without, are counted above)."""
    import torch

    def forward(model: Any, batch: Any) -> Any:
        if not torch.is_grad_enabled():
            return fn(model, batch)
        clock.add("student_tokens", float(batch.attention_mask.sum()))
        return clock.timed(fn, "student_forward")(model, batch)

    return forward


def mfu_side(
    model_dir: str,
    pairs: list[list[str]],
    steps: int,
    max_new_tokens: int,
    mixed_precision: str,
    matmul_sizes: list[int],
    batch: int = BATCH,
    vllm_gpu_share: float = 0.3,
    backend: str = "auto",
) -> dict[str, Any]:
    """Train `steps` instrumented OPSA steps, rolling out on `backend` (the runtime's choice
    under "auto"); on a GPU a vLLM rollout engine may take `vllm_gpu_share` of the GPU's
    memory (the student's fp32 master weights and AdamW state, and the teacher, need the
    rest)."""
    import torch

    from opsa.models.runtime import Runtime, RuntimeConfig, using
    from opsa.training.onpolicy import train_opsa

    peak = matmul_peak(PRECISIONS[mixed_precision], matmul_sizes)
    clock = PhaseClock(profile_step=steps)
    instrument(clock)
    runtime = Runtime(RuntimeConfig(vllm={"gpu_memory_utilization": vllm_gpu_share}), backend)
    with tempfile.TemporaryDirectory(prefix="opsa-bench-mfu-") as tmp, using(runtime):
        folder = Path(tmp)
        harmful, benign, selected = write_opsa_inputs(pairs, folder)
        config = opsa_config(steps, max_new_tokens, torch.get_num_threads(), batch)
        config = config.model_copy(update={"mixed_precision": mixed_precision})
        train_opsa(model_dir, harmful, benign, selected, config, folder / "out", folder / "work")
    gpu = torch.cuda.is_available()
    return {
        "backend": runtime.backend("rollout"),
        "matmul_peak_flops": peak,
        "parameters": parameter_count(model_dir),
        "steps": clock.steps,
        "profile_top": clock.profile_top,
        "device": torch.cuda.get_device_name(0) if gpu else "cpu",
        "peak_gpu_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20) if gpu else None,
        "peak_gpu_reserved_mb": round(torch.cuda.max_memory_reserved() / 2**20) if gpu else None,
    }


def parameter_count(model_dir: str) -> int:
    """Parameters of the model in `model_dir`, tied embeddings counted once (no weights read)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    return sum(p.numel() for p in model.parameters())
