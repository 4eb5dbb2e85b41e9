"""Row 3: generation tokens per second of the HF and vLLM backends, same prompts and settings,
at the batch sizes the pipeline uses (the embedded default's OPSA rollouts 8, context search
and evaluation 32). Each backend runs in its own process, opened as every stage opens it
(`open_generator` under a runtime that names the backend); greedy decoding of rendered chat
prompts; tokens are the generated token ids (stop token excluded). Then: does
`generation.backend: auto` pick the faster backend on this machine?"""

from __future__ import annotations

from typing import Any

from benchmarks import inputs
from benchmarks.isolate import run_isolated
from benchmarks.suite import Settings
from benchmarks.timing import ratio

BATCH_SIZES, SMALL_BATCH_SIZES = [8, 32], [2]
PROMPTS, SMALL_PROMPTS = 32, 2
NEW_TOKENS, SMALL_NEW_TOKENS = 32, 4


def run(settings: Settings) -> dict[str, Any]:
    kwargs = {
        "model_dir": str(settings.model_dir),
        "prompts": [
            p for _, p in inputs.mixed_prompts(SMALL_PROMPTS if settings.small else PROMPTS)
        ],
        "batch_sizes": SMALL_BATCH_SIZES if settings.small else BATCH_SIZES,
        "max_new_tokens": SMALL_NEW_TOKENS if settings.small else NEW_TOKENS,
        "reps": settings.reps,
        "warmup": settings.warmup,
    }
    sides = {
        backend: run_isolated(
            "benchmarks.generation:backend_side",
            kwargs | {"backend": backend},
            settings.threads,
            settings.side_log(3, backend),
        )
        for backend in ("hf", "vllm")
    }
    return summarise(sides["hf"], sides["vllm"], auto_choice())


def auto_choice() -> str:
    """The backend `generation.backend: auto` gives a policy model on this machine."""
    from opsa.models.runtime import Runtime

    return Runtime(backend="auto").backend("policy")


def summarise(hf: dict[str, Any], vllm: dict[str, Any], auto: str) -> dict[str, Any]:
    def text(side: dict[str, Any]) -> str:
        return ", ".join(f"b{b} {r['tokens_per_s']:.1f}" for b, r in side["by_batch"].items())

    ratios = {
        b: ratio(vllm["by_batch"][b]["tokens_per_s"], r["tokens_per_s"])
        for b, r in hf["by_batch"].items()
    }
    faster = {b: "vllm" if x > 1 else "hf" for b, x in ratios.items()}
    picks_faster = all(f == auto for f in faster.values())
    return {
        "measure": "generation tokens/s (greedy, 32 prompts × 32 new tokens) at batch 8 / 32",
        "ours": f"HF backend: {text(hf)} tok/s (load {hf['load_s']:.0f} s)",
        "peer": f"vLLM backend: {text(vllm)} tok/s (load {vllm['load_s']:.0f} s)",
        "ratio": max(ratios.values()),
        "ratio_text": "vLLM/HF "
        + ", ".join(f"b{b} {x}×" for b, x in ratios.items())
        + f"; auto picks {auto}",
        "target": "`backend: auto` picks the faster",
        "met": picks_faster,
        "auto": auto,
        "faster": faster,
        "hf": hf,
        "vllm": vllm,
    }


def backend_side(
    backend: str,
    model_dir: str,
    prompts: list[str],
    batch_sizes: list[int],
    max_new_tokens: int,
    reps: int,
    warmup: int,
) -> dict[str, Any]:
    """Tokens/s of `backend` over `prompts`, and this process's peak GPU memory as torch
    counts it (None on a CPU; a vLLM engine core in a process of its own is not counted)."""
    import time

    import torch

    from opsa.generation.backend import open_generator
    from opsa.models.runtime import Runtime, RuntimeConfig, using

    config = RuntimeConfig(vllm={"max_model_len": 1024, "cpu_kv_cache_mib": 2048})
    with using(Runtime(config, backend)):
        start = time.perf_counter()
        generator = open_generator(model_dir, "policy", f"bench {backend}")
        load_s = time.perf_counter() - start
        measured = _measure(generator, prompts, batch_sizes, max_new_tokens, reps, warmup)
    gpu = torch.cuda.is_available()
    return measured | {
        "backend": backend,
        "load_s": round(load_s, 2),
        "peak_gpu_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20) if gpu else None,
        "peak_gpu_reserved_mb": round(torch.cuda.max_memory_reserved() / 2**20) if gpu else None,
    }


def _measure(
    generator: Any,
    prompts: list[str],
    batch_sizes: list[int],
    max_new_tokens: int,
    reps: int,
    warmup: int,
) -> dict[str, Any]:
    """Tokens/s over all prompts at each batch size (median of `reps` after `warmup`)."""
    from benchmarks.timing import repeat
    from opsa.generation.engine import SamplingParams
    from opsa.prompting.chat import render_user

    texts = [render_user(generator.tokenizer, p) for p in prompts]
    by_batch = {}
    for batch in batch_sizes:
        params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens, batch_size=batch)
        counts: list[int] = []

        def once(params: SamplingParams = params, counts: list[int] = counts) -> None:
            completions = generator.generate(texts, params)
            counts.append(sum(len(c[0].token_ids) for c in completions))

        timing = repeat(once, reps, warmup)
        tokens = counts[-1]
        by_batch[str(batch)] = {"tokens": tokens, "tokens_per_s": round(tokens / timing.median, 2),
                                "timing": timing.to_dict()}  # fmt: skip
    return {"by_batch": by_batch, "prompts": len(prompts), "max_new_tokens": max_new_tokens}
