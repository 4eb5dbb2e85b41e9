"""Row 1: one OPSA training step against one step of TRL 1.16's SDFTTrainer, matched settings.

Both sides train the same embedded model on the same prompts in the same order (OPSA's seeded
batch schedule, fed to TRL unshuffled), batch 4, 64 completion tokens sampled at the same
temperature, a frozen copy of the initial model as teacher given the same context in the same
place (a user-turn suffix, which is TRL's default teacher template), top-k 64, fp32, AdamW
with the same learning rate, weight decay and clipping. Each side runs in its own process
(clean peak RSS); the first steps are warm-up. Completion tokens trained per second is
completion tokens (stop token included, as both sides train on it) / step seconds, per step.

What cannot be matched: TRL takes the top-k on the student's support, OPSA on the teacher's;
TRL's `distillation_alpha` 0.5 is a generalised JSD, OPSA's `mixed` 0.5 is
0.5·KL(t‖s) + 0.5·KL(s‖t); TRL divides both sides' logits by the sampling temperature before
the loss; the samples differ (each side's own RNG), so completion lengths differ per step.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import inputs
from benchmarks.isolate import run_isolated
from benchmarks.suite import Settings
from benchmarks.timing import ratio

BATCH = 4
TOP_K = 64
TEMPERATURE = 0.6
LR = 1e-5
SEED = 0


def run(settings: Settings) -> dict[str, Any]:
    new_tokens = 8 if settings.small else 64
    steps = settings.warmup + settings.reps
    pairs = inputs.mixed_prompts(BATCH * steps)
    common = {"model_dir": str(settings.model_dir), "steps": steps,
              "max_new_tokens": new_tokens}  # fmt: skip
    ours = run_isolated(
        "benchmarks.step_vs_trl:opsa_side",
        common | {"pairs": pairs},
        settings.threads,
        settings.side_log(1, "opsa"),
    )
    peer = run_isolated(
        "benchmarks.step_vs_trl:trl_side",
        common | {"prompts": ours["prompt_order"]},
        settings.threads,
        settings.side_log(1, "trl"),
    )
    return summarise(ours, peer, settings.warmup, new_tokens)


def summarise(
    ours: dict[str, Any], peer: dict[str, Any], warmup: int, new_tokens: int
) -> dict[str, Any]:
    o, p = _throughput(ours["steps"][warmup:]), _throughput(peer["steps"][warmup:])
    speed = ratio(o["tokens_per_s"], p["tokens_per_s"])
    memory = ratio(ours["peak_rss_mb"], peer["peak_rss_mb"])
    return {
        "measure": f"training step, batch {BATCH}, {new_tokens} new tokens, top-{TOP_K}: "
        "completion tokens trained/s; peak RSS",
        "ours": f"{o['tokens_per_s']:.1f} tok/s ({o['step_s']:.2f} s/step), "
        f"{ours['peak_rss_mb'] / 1024:.2f} GiB",
        "peer": f"TRL 1.16 SDFTTrainer: {p['tokens_per_s']:.1f} tok/s ({p['step_s']:.2f} s/step), "
        f"{peer['peak_rss_mb'] / 1024:.2f} GiB",
        "ratio": speed,
        "memory_ratio": memory,
        "ratio_text": f"{speed}× throughput, {memory}× memory",
        "target": "≥1.5× throughput at ≤1× memory",
        "met": bool(speed >= 1.5 and memory <= 1.0),
        "ours_detail": o | {"peak_rss_mb": ours["peak_rss_mb"], "steps": ours["steps"]},
        "peer_detail": p | {"peak_rss_mb": peer["peak_rss_mb"], "steps": peer["steps"]},
        "differences": [
            "top-k support: TRL the student's top-k, OPSA the teacher's",
            "divergence: TRL generalised JSD (alpha 0.5), OPSA 0.5 forward + 0.5 reverse KL",
            "TRL divides student and teacher logits by the temperature before the loss",
            "samples differ (each side's own RNG): completion lengths differ per step",
        ],
    }


def _throughput(steps: list[dict[str, Any]]) -> dict[str, float]:
    """Median step seconds and median per-step completion tokens per second."""
    return {
        "step_s": round(statistics.median(s["seconds"] for s in steps), 4),
        "tokens_per_s": round(statistics.median(s["tokens"] / s["seconds"] for s in steps), 4),
        "tokens_per_step": statistics.median(s["tokens"] for s in steps),
    }


def opsa_config(steps: int, max_new_tokens: int, threads: int, batch: int = BATCH) -> Any:
    from opsa.training.config import OPSAConfig

    return OPSAConfig(
        seed=SEED, lr=LR, weight_decay=0.01, grad_clip=1.0, schedule="constant",
        warmup_steps=0, batch_size=batch, micro_batch_size=batch, max_steps=steps,
        checkpoint_every=10**6, cpu_threads=threads, temperature=TEMPERATURE, top_p=1.0,
        max_new_tokens=max_new_tokens, generation_batch_size=batch, divergence="mixed",
        mixed_forward_weight=0.5, estimator="topk", top_k=TOP_K, teacher="base",
    )  # fmt: skip


def write_opsa_inputs(pairs: list[list[str]], folder: Path) -> tuple[Path, Path, Path]:
    """harmful.jsonl, benign.jsonl and the selection (the same context for both labels)."""
    from opsa.prompting.placement import Context
    from opsa.records import write_json, write_jsonl

    paths = (folder / "harmful.jsonl", folder / "benign.jsonl", folder / "selected.json")
    for label, path in zip(("harmful", "benign"), paths[:2], strict=True):
        rows = [
            {"id": f"{label}-{k}", "prompt": p} for k, (lab, p) in enumerate(pairs) if lab == label
        ]
        write_jsonl(path, rows)
    context = Context("refuse-rule@user_suffix", inputs.CONTEXT, "user_suffix")
    write_json(paths[2], {"harmful": context.to_row(), "benign": context.to_row()})
    return paths


def opsa_side(
    model_dir: str, pairs: list[list[str]], steps: int, max_new_tokens: int
) -> dict[str, Any]:
    """Train `steps` OPSA steps with the pipeline's own entry point; per-step seconds, tokens
    and peak RSS from its train log (the final save comes after and is not counted)."""
    import torch

    from opsa.prompting.sets import batch_schedule, load_labelled_prompts
    from opsa.records import read_jsonl
    from opsa.training.onpolicy import train_opsa

    with tempfile.TemporaryDirectory(prefix="opsa-bench-step-") as tmp:
        folder = Path(tmp)
        harmful, benign, selected = write_opsa_inputs(pairs, folder)
        config = opsa_config(steps, max_new_tokens, torch.get_num_threads())
        items = load_labelled_prompts(harmful, benign)
        order = batch_schedule(len(items), BATCH, config.epochs, SEED)
        train_opsa(model_dir, harmful, benign, selected, config, folder / "out", folder / "work")
        log = read_jsonl(folder / "work" / "train_log.jsonl")
    return {
        "steps": [{"seconds": r["seconds"], "tokens": r["tokens"]} for r in log],
        "peak_rss_mb": max(r["peak_mem_mb"] for r in log),
        "prompt_order": [items[i].prompt for batch in order for i in batch],
    }


def trl_side(model_dir: str, prompts: list[str], steps: int, max_new_tokens: int) -> dict[str, Any]:
    """Train `steps` SDFTTrainer steps on `prompts` in this order; a callback times each step
    (rollout to optimizer step) and reads the completion lengths TRL logs."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl.experimental.sdft import SDFTConfig, SDFTTrainer

    clock = _trl_step_clock()
    rows = [{"prompt": [{"role": "user", "content": p}], "privileged_context": inputs.CONTEXT}
            for p in prompts]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="opsa-bench-trl-") as tmp:
        args = SDFTConfig(
            output_dir=tmp, per_device_train_batch_size=BATCH, gradient_accumulation_steps=1,
            num_generations=1, max_steps=steps, max_completion_length=max_new_tokens,
            temperature=TEMPERATURE, top_p=1.0, top_k=0, distillation_mode="topk_logits",
            distillation_topk=TOP_K, distillation_alpha=0.5, teacher_model_kind="base",
            learning_rate=LR, weight_decay=0.01, max_grad_norm=1.0,
            lr_scheduler_type="constant", logging_steps=1, save_strategy="no",
            report_to="none", use_cpu=True, shuffle_dataset=False, seed=SEED,
            disable_tqdm=True, dataloader_num_workers=0,
        )  # fmt: skip
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        trainer = SDFTTrainer(
            model=model, args=args, train_dataset=Dataset.from_list(rows), callbacks=[clock]
        )
        trainer.train()
    lengths = clock.lengths
    if len(lengths) != len(clock.steps):
        raise RuntimeError(
            f"TRL logged {len(lengths)} completion lengths for {len(clock.steps)} steps"
        )
    steps_out = [
        s | {"tokens": round(n * BATCH)} for s, n in zip(clock.steps, lengths, strict=True)
    ]
    return {"steps": steps_out, "peak_rss_mb": max(s["peak_rss_mb"] for s in clock.steps)}


def _trl_step_clock() -> Any:
    from transformers import TrainerCallback

    from benchmarks.machine import peak_rss_mb

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.start = 0.0
            self.steps: list[dict[str, float]] = []
            self.lengths: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
            seconds = time.perf_counter() - self.start
            self.steps.append({"seconds": round(seconds, 3), "peak_rss_mb": peak_rss_mb()})

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN003
            if logs and "completions/mean_length" in logs:
                self.lengths.append(logs["completions/mean_length"])

    return StepClock()
