"""Row 7: the suite's GPU measures, on randomly initialised models with the architectures of
Qwen3-0.6B and DeepSeek-R1-Distill-Qwen-1.5B (`benchmarks.random_model`: no hub needed).

Per architecture, each side in its own process:
- rollouts: tokens/s of the vLLM backend, opened as every stage opens it, greedy decoding of
  rendered chat prompts (row 3's side) at the batch of a GPU run's rollouts;
- training: OPSA steps in bf16 autocast over fp32 master weights (row 2's instrumented step:
  vLLM rollouts colocated, frozen bf16 teacher), the forward/backward part's model FLOP/s as a
  share of the bf16 matmul peak measured on the same GPU in the same process, the time split,
  the profiled step's top kernels, and the GPU's peak memory (allocated and reserved by torch,
  vLLM's KV cache included).

Where torch sees no GPU the row says so and measures nothing. `--small` runs shrunken copies
of both architectures on whatever device there is, to check the code path (CI, on a CPU).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks import inputs
from benchmarks.isolate import run_isolated
from benchmarks.random_model import ARCHITECTURES, build_random_model
from benchmarks.step_mfu import precision_summary
from benchmarks.suite import Settings

ROLLOUT = {"prompts": 64, "batch": 64, "new_tokens": 256}
TRAIN = {"batch": 16, "new_tokens": 128, "matmul_sizes": [4096, 8192]}
SMALL_ROLLOUT = {"prompts": 2, "batch": 2, "new_tokens": 4}
SMALL_TRAIN = {"batch": 2, "new_tokens": 4, "matmul_sizes": [256]}
MEASURE = "GPU: vLLM rollout tokens/s, training MFU vs bf16 matmul peak, peak memory"


def run(settings: Settings) -> dict[str, Any]:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    if gpu is None and not settings.small:
        return {"measure": MEASURE, "ours": "not measured: torch sees no GPU on this machine",
                "peer": "–", "ratio": None, "ratio_text": "–", "target": "measured on a GPU",
                "met": None, "gpu": None}  # fmt: skip
    models = {}
    with tempfile.TemporaryDirectory(prefix="opsa-bench-gpu-") as tmp:
        for name in ARCHITECTURES:
            model_dir = build_random_model(name, Path(tmp) / name, settings.small)
            models[name] = measure(str(model_dir), name, settings)
    return summarise(models, gpu)


def measure(model_dir: str, name: str, settings: Settings) -> dict[str, Any]:
    roll, train = (SMALL_ROLLOUT, SMALL_TRAIN) if settings.small else (ROLLOUT, TRAIN)
    rollout = run_isolated(
        "benchmarks.generation:backend_side",
        {"backend": "vllm", "model_dir": model_dir,
         "prompts": [p for _, p in inputs.mixed_prompts(roll["prompts"])],
         "batch_sizes": [roll["batch"]], "max_new_tokens": roll["new_tokens"],
         "reps": settings.reps, "warmup": settings.warmup},
        settings.threads,
        settings.side_log(7, f"{name}_rollout"),
    )  # fmt: skip
    steps = settings.warmup + settings.reps + 1  # the last one is profiled, not timed
    training = run_isolated(
        "benchmarks.step_mfu:mfu_side",
        {"model_dir": model_dir, "pairs": inputs.mixed_prompts(train["batch"] * steps),
         "steps": steps, "max_new_tokens": train["new_tokens"], "mixed_precision": "bf16",
         "matmul_sizes": train["matmul_sizes"], "batch": train["batch"]},
        settings.threads,
        settings.side_log(7, f"{name}_training"),
    )  # fmt: skip
    summary = precision_summary(training, settings.warmup, settings.reps)
    return {
        "rollout_tokens_per_s": rollout["by_batch"][str(roll["batch"])]["tokens_per_s"],
        "rollout": rollout,
        "training": summary | {k: training[k] for k in ("device", "peak_gpu_allocated_mb",
                                                         "peak_gpu_reserved_mb")},
    }  # fmt: skip


def summarise(models: dict[str, dict[str, Any]], gpu: str | None) -> dict[str, Any]:
    def text(name: str, m: dict[str, Any]) -> str:
        t = m["training"]
        memory = (
            f", peak {t['peak_gpu_allocated_mb'] / 1024:.1f} GiB allocated"
            if t["peak_gpu_allocated_mb"] is not None
            else ""
        )
        return (
            f"{name}: rollout {m['rollout_tokens_per_s']:.0f} tok/s; training fwd/bwd "
            f"{t['fwd_bwd_flops'] / 1e12:.2f} TFLOP/s ({t['mfu']:.0%} MFU), "
            f"step {t['step_s']:.2f} s{memory}"
        )

    peaks = "; ".join(f"{n}: {m['training']['peak_flops'] / 1e12:.1f}" for n, m in models.items())
    return {
        "measure": MEASURE,
        "ours": f"{gpu or 'no GPU: --small code-path check on the CPU'}: "
        + "; ".join(text(n, m) for n, m in models.items()),
        "peer": f"bf16 matmul peak TFLOP/s measured in each training process: {peaks}",
        "ratio": min(m["training"]["mfu"] for m in models.values()),
        "ratio_text": " / ".join(f"{m['training']['mfu']:.0%}" for m in models.values())
        + " MFU (fwd/bwd)",
        "target": "measured on a GPU",
        "met": True if gpu else None,  # a --small check on a CPU measures nothing
        "gpu": gpu,
        "models": models,
    }
