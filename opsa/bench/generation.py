"""Row 3: generation tokens per second of the HF and vLLM backends, same prompts and settings,
at the batch sizes the pipeline uses (the embedded default's OPSA rollouts 8, context search
and evaluation 32). Each backend runs in its own process; greedy decoding of rendered chat
prompts; tokens are the generated token ids (stop token excluded)."""

from __future__ import annotations

from typing import Any

from opsa.bench import inputs
from opsa.bench.isolate import run_isolated
from opsa.bench.suite import Settings
from opsa.bench.timing import ratio

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
    hf = run_isolated(
        "opsa.bench.generation:hf_side", kwargs, settings.threads, settings.side_log(3, "hf")
    )
    return summarise(hf, None)


def summarise(hf: dict[str, Any], vllm: dict[str, Any] | None) -> dict[str, Any]:
    def text(side: dict[str, Any]) -> str:
        return ", ".join(
            f"batch {b}: {r['tokens_per_s']:.1f} tok/s" for b, r in side["by_batch"].items()
        )

    result: dict[str, Any] = {
        "measure": "generation tokens/s (greedy), embedded model, pipeline batch sizes",
        "ours": f"HF: {text(hf)}",
        "hf": hf,
    }
    if vllm is None:
        return result | {
            "peer": "vLLM: not measured (the vLLM backend is not merged into this branch)",
            "ratio": None,
            "ratio_text": "–",
            "target": "`backend: auto` picks the faster",
            "met": None,
        }
    ratios = {
        b: ratio(vllm["by_batch"][b]["tokens_per_s"], hf["by_batch"][b]["tokens_per_s"])
        for b in hf["by_batch"]
    }
    return result | {"peer": f"vLLM: {text(vllm)}", "vllm": vllm, "ratios": ratios}


def hf_side(
    model_dir: str,
    prompts: list[str],
    batch_sizes: list[int],
    max_new_tokens: int,
    reps: int,
    warmup: int,
) -> dict[str, Any]:
    from opsa.generation.hf import HFGenerator

    return _measure(
        HFGenerator.from_dir(model_dir), prompts, batch_sizes, max_new_tokens, reps, warmup
    )


def _measure(
    generator: Any,
    prompts: list[str],
    batch_sizes: list[int],
    max_new_tokens: int,
    reps: int,
    warmup: int,
) -> dict[str, Any]:
    """Tokens/s over all prompts at each batch size (median of `reps` after `warmup`)."""
    from opsa.bench.timing import repeat
    from opsa.contexts.placement import render_prompt
    from opsa.generation.engine import SamplingParams

    texts = [render_prompt(generator.tokenizer, p) for p in prompts]
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
