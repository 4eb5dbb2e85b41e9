"""Row 1: OPSA's training step against TRL 1.16's SDFTTrainer, both in one process, alternating.

One process per setting builds TRL's SDFTTrainer and OPSA's training (the pipeline's own
`onpolicy.build_on_policy`) and lets TRL train; a callback runs one OPSA step (the pipeline's
own `loop.train_step`) after each TRL step, so the sides alternate step by step under the same load.
Both train the embedded model on the same prompts in the same order (OPSA's seeded batch
schedule, fed to TRL unshuffled): batch 4, one rollout per prompt, 64 completion tokens at most,
the same temperature, a frozen copy of the initial model as teacher given the same context in
the same place (a user-turn suffix, TRL's default teacher template), top-k 64, AdamW with the
same learning rate, betas, weight decay and clipping. Each step is timed by wall clock and by
the process's CPU time (`time.process_time`, all threads), rollout included; throughput is
completion tokens trained (stop token included) / step seconds, median over the steps after
the warm-up.

Settings: *exact*: fp32, no gradient checkpointing, HF generate for both rollouts, torch's
AdamW on both. *exact-vllm*: the same, but OPSA rolls out on its colocated vLLM engine (fp32,
so it samples from the same distribution as HF generate). *best*: each side's best supported
setting: bf16 autocast over fp32 weights on both; TRL with its defaults (gradient checkpointing,
fused AdamW) and HF generate (its vLLM colocate mode fails here, see DIFFERENCES); OPSA with its
colocated vLLM rollouts.

Peak RSS cannot be split within one process: each side also runs alone, in its own process,
same setting, a few steps. For the best setting, each side's loss on one fixed batch (fixed
rollouts) is computed in fp32 and under bf16 autocast: the loss difference of bf16.
"""

from __future__ import annotations

import os
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
MEMORY_STEPS = 3  # steps of each side alone (peak RSS is reached at the first optimizer step)

# name -> OPSA's mixed precision and rollout backend; TRL's arguments beyond the common ones
SETTINGS: dict[str, dict[str, Any]] = {
    "exact": {
        "text": "fp32, no gradient checkpointing, HF generate rollouts, torch AdamW (both)",
        "mixed_precision": "no",
        "backend": "hf",
        "trl": {"bf16": False, "gradient_checkpointing": False, "optim": "adamw_torch"},
    },
    "exact-vllm": {
        "text": "as exact, but OPSA rolls out with its colocated vLLM engine (fp32: the same "
        "sampling distribution as HF's; TRL with HF generate)",
        "mixed_precision": "no",
        "backend": "vllm",
        "trl": {"bf16": False, "gradient_checkpointing": False, "optim": "adamw_torch"},
    },
    "best": {
        "text": "bf16 autocast (both); TRL: gradient checkpointing, fused AdamW, HF generate; "
        "OPSA: colocated vLLM rollouts",
        "mixed_precision": "bf16",
        "backend": "vllm",
        "trl": {},  # TRL's defaults: bf16, gradient checkpointing, adamw_torch_fused
    },
}
DIFFERENCES = [
    "top-k support: TRL the student's top-k, OPSA the teacher's",
    "divergence: TRL generalised JSD (alpha 0.5), OPSA 0.5 forward + 0.5 reverse KL",
    "TRL divides student and teacher logits by the temperature before the loss",
    "samples differ (each side's own sampling): completion lengths differ per step",
    "best: TRL's vLLM colocate mode does not run here: its weight sync (vLLM's per-layer "
    "load_weights) fails on the installed vLLM 0.32 CPU model ('Parameter' object has no "
    "attribute 'weight_loader'; TRL 1.16 supports vLLM 0.22-0.31), so TRL rolls out with HF "
    "generate while OPSA uses vLLM",
    "best: TRL's defaults also differ from OPSA's by design: gradient checkpointing on "
    "(OPSA: off) and fused AdamW (OPSA: torch's AdamW)",
]


def run(settings: Settings) -> dict[str, Any]:
    new_tokens = 8 if settings.small else 64
    steps = settings.warmup + settings.reps
    memory_steps = min(steps, 2 if settings.small else MEMORY_STEPS)
    pairs = inputs.mixed_prompts(BATCH * steps)
    common = {"model_dir": str(settings.model_dir), "pairs": pairs, "max_new_tokens": new_tokens}
    measured = {}
    # --small checks the code paths: exact-vllm differs from exact only in OPSA's rollout
    # engine, which best runs too
    for name in [n for n in SETTINGS if not (settings.small and n == "exact-vllm")]:
        both = run_isolated(
            "benchmarks.step_vs_trl:side",
            common | {"setting": name, "steps": steps, "sides": ["trl", "opsa"],
                      "loss_check": SETTINGS[name]["mixed_precision"] != "no"},
            settings.threads,
            settings.side_log(1, f"{name}_both"),
        )  # fmt: skip
        alone = {
            who: run_isolated(
                "benchmarks.step_vs_trl:side",
                common | {"setting": name, "steps": memory_steps, "sides": [who]},
                settings.threads,
                settings.side_log(1, f"{name}_{who}_alone"),
            )["peak_rss_mb"]
            for who in ("opsa", "trl")
        }
        measured[name] = setting_summary(both, alone, settings.warmup, memory_steps)
    return summarise(measured, new_tokens)


def setting_summary(
    both: dict[str, Any], alone: dict[str, float], warmup: int, memory_steps: int
) -> dict[str, Any]:
    """One setting: each side's throughput (wall, CPU), the ratios, the peak RSS of each side
    alone, and the loss difference where it was computed."""
    ours, peer = _throughput(both["opsa"][warmup:]), _throughput(both["trl"][warmup:])
    return {
        "ours": ours,
        "peer": peer,
        "ratio_wall": ratio(ours["tokens_per_s"], peer["tokens_per_s"]),
        "ratio_cpu": ratio(ours["tokens_per_cpu_s"], peer["tokens_per_cpu_s"]),
        "memory": {
            "ours_peak_rss_mb": alone["opsa"],
            "peer_peak_rss_mb": alone["trl"],
            "ratio": ratio(alone["opsa"], alone["trl"]),
            "steps": memory_steps,
        },
        "loss_difference": both.get("loss_difference"),
        "steps": {"ours": both["opsa"], "peer": both["trl"]},
        "process_peak_rss_mb": both["peak_rss_mb"],
    }


def summarise(measured: dict[str, dict[str, Any]], new_tokens: int) -> dict[str, Any]:
    exact = measured["exact"]

    def side(key: str, s: dict[str, Any]) -> str:
        t, gib = s[key], s["memory"][f"{key}_peak_rss_mb"] / 1024
        return (
            f"{t['tokens_per_s']:.1f} tok/s ({t['tokens_per_cpu_s']:.1f} per CPU-s, "
            f"{t['step_s']:.2f} s/step), {gib:.2f} GiB"
        )

    ours = "; ".join(f"{n}: {side('ours', s)}" for n, s in measured.items())
    peer = "; ".join(f"{n}: {side('peer', s)}" for n, s in measured.items())
    ratio_text = "; ".join(
        f"{n}: {s['ratio_wall']}× throughput (CPU {s['ratio_cpu']}×), "
        f"{s['memory']['ratio']}× memory"
        for n, s in measured.items()
    )
    for name, s in measured.items():
        s["setting"] = SETTINGS[name]["text"]
    best = measured.get("best", {}).get("loss_difference") or {}
    loss = "; ".join(
        f"{who} {d['relative']:.1e} relative ({d['absolute']:.1e} absolute)"
        for who, d in best.items()
        if d
    )
    note = (
        "both sides in one process, alternating step by step; peak RSS of each side alone in "
        "its own process. Settings: "
        + "; ".join(f"{n}: {SETTINGS[n]['text']}" for n in measured)
        + ". OPSA peak RSS without a rollout engine (exact, HF) "
        f"{exact['memory']['ours_peak_rss_mb'] / 1024:.2f} GiB"
    )
    for name in ("exact-vllm", "best"):
        if name in measured:
            with_engine = measured[name]["memory"]["ours_peak_rss_mb"] / 1024
            note += f", with its vLLM engine ({name}) {with_engine:.2f} GiB"
    if loss:
        note += f". Loss of one fixed batch, bf16 autocast against fp32: {loss}"
    return {
        "measure": f"training step, batch {BATCH}, {new_tokens} new tokens, top-{TOP_K}, both "
        "sides alternating in one process: completion tokens trained/s (wall and CPU); "
        "peak RSS of each side alone",
        "ours": "OPSA " + ours,
        "peer": "TRL 1.16 SDFTTrainer " + peer,
        "ratio": exact["ratio_wall"],
        "memory_ratio": exact["memory"]["ratio"],
        "ratio_text": ratio_text,
        "target": "≥1.5× throughput at ≤1× memory (exact setting)",
        "met": bool(exact["ratio_wall"] >= 1.5 and exact["memory"]["ratio"] <= 1.0),
        "met_on": "exact setting: wall-clock throughput ratio and peak RSS ratio",
        "note": note,
        "by_setting": measured,
        "differences": DIFFERENCES,
    }


def _throughput(steps: list[dict[str, Any]]) -> dict[str, float]:
    """Median step seconds (wall, CPU) and median per-step completion tokens per second."""
    return {
        "step_s": round(statistics.median(s["seconds"] for s in steps), 4),
        "cpu_s": round(statistics.median(s["cpu_seconds"] for s in steps), 4),
        "tokens_per_s": round(statistics.median(s["tokens"] / s["seconds"] for s in steps), 4),
        "tokens_per_cpu_s": round(
            statistics.median(s["tokens"] / s["cpu_seconds"] for s in steps), 4
        ),
        "tokens_per_step": statistics.median(s["tokens"] for s in steps),
        "steps": len(steps),
    }


def loss_difference(fp32: float, bf16: float) -> dict[str, float]:
    absolute = abs(bf16 - fp32)
    return {
        "fp32": fp32,
        "bf16": bf16,
        "absolute": absolute,
        "relative": absolute / abs(fp32) if fp32 else float("nan"),
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
    from opsa.records import write_json, write_jsonl

    paths = (folder / "harmful.jsonl", folder / "benign.jsonl", folder / "selected.json")
    for label, path in zip(("harmful", "benign"), paths[:2], strict=True):
        rows = [
            {"id": f"{label}-{k}", "prompt": p} for k, (lab, p) in enumerate(pairs) if lab == label
        ]
        write_jsonl(path, rows)
    row = bench_context().to_row()
    write_json(paths[2], {"harmful": row, "benign": row})
    return paths


def prompt_items(pairs: list[list[str]]) -> tuple[list[Any], dict[str, Any]]:
    """The training items (harmful first, then benign, as the pipeline loads them) and the
    context of each label (the same one)."""
    from opsa.prompting.sets import PromptItem

    items = [
        PromptItem(f"{label}-{k}", prompt, label)
        for label in ("harmful", "benign")
        for k, (lab, prompt) in enumerate(pairs)
        if lab == label
    ]
    context = bench_context()
    return items, {"harmful": context, "benign": context}


def bench_context() -> Any:
    """The teacher's context on both sides: the same for both labels, after the prompt (TRL's
    default teacher template)."""
    from opsa.prompting.placement import Context

    return Context("refuse-rule@user_suffix", inputs.CONTEXT, "user_suffix")


class OPSAStepper:
    """The pipeline's OPSA training one step per call: `onpolicy.build_on_policy` builds the
    run and task `loop.train` would step through, and each `step()` calls `loop.train_step` as
    `train` does, without checkpoints or the final save. Build it inside the runtime (`using`)
    whose rollout backend it should use."""

    def __init__(self, model_dir: str, items: list[Any], contexts: dict[str, Any], config: Any,
                 work_dir: str) -> None:  # fmt: skip
        from opsa.training.onpolicy import build_on_policy

        self.run, self.task = build_on_policy(model_dir, items, contexts, config, work_dir)
        self.run.progress.task = self.task
        _drop_accelerate_autocast(self.run.model)
        self.steps: list[dict[str, float]] = []

    def step(self) -> dict[str, float]:
        """One optimizer step (rollout included): wall and CPU seconds, tokens, loss."""
        from opsa.training.loop import train_step

        before = _adam_steps(self.run.optimizer)
        wall, cpu = time.perf_counter(), time.process_time()
        row = train_step(self.run, self.task, self.run.progress.step)
        if _adam_steps(self.run.optimizer) != before + 1:  # accelerate's state is shared
            raise RuntimeError("OPSA's optimizer step was skipped (gradient sync state)")
        measured = {
            "seconds": round(time.perf_counter() - wall, 4),
            "cpu_seconds": round(time.process_time() - cpu, 4),
            "tokens": row["tokens"],
            "loss": row["loss"],
        }
        self.steps.append(measured)
        return measured

    def loss_difference(self) -> dict[str, float]:
        """The training loss (token mean) of one fixed batch, the first step's prompts with
        completions sampled once (HF, from the current student), computed by the task's own
        micro-step in fp32 and under bf16 autocast; its backward is scaled by 0 and the
        gradients dropped, no optimizer step. The teacher's cached shared prefix (kept in the
        precision it was first computed in) is bypassed: each pass runs the full forward."""
        from opsa.training.rollout import sample_completions

        run, task = self.run, self.task
        prompts = [task.prompts[i] for i in run.schedule[0]]
        student = run.accelerator.unwrap_model(run.model)
        ids = [p.student_ids for p in prompts]
        completions = sample_completions(student, task.tokenizer, ids, task.sampling(0))
        config, values, tokens = run.config, {}, 0
        prefix = getattr(task, "teacher_prefix", None)
        task.teacher_prefix = None
        try:
            for precision in ("no", "bf16"):
                run.config = config.model_copy(update={"mixed_precision": precision})
                _, targets, _, total = task.micro_step(prompts, completions, 0.0, 0)
                values[precision], tokens = total / targets.numel(), targets.numel()
                run.optimizer.zero_grad(set_to_none=True)
        finally:
            run.config, task.teacher_prefix = config, prefix
        return loss_difference(values["no"], values["bf16"]) | {"tokens": tokens}


def _adam_steps(optimizer: Any) -> float:
    """The steps AdamW has taken (its state's count; 0 before the first)."""
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
    for state in inner.state.values():
        if "step" in state:
            return float(state["step"])
    return 0.0


def _drop_accelerate_autocast(model: Any) -> None:
    """Accelerate's state is one per process: after TRL's trainer set it to bf16, a later
    `Accelerator()` would wrap OPSA's student forward in autocast too, which the pipeline's
    own run never does (it autocasts only where `compute_precision` says): undo that."""
    if hasattr(model, "_original_forward"):
        model.forward = model._original_forward


def build_trl(
    model_dir: str, prompts: list[str], steps: int, max_new_tokens: int, extra: dict[str, Any],
    out_dir: str, callbacks: list[Any],
) -> Any:  # fmt: skip
    """TRL's SDFTTrainer over `prompts` in this order, the settings matched to OPSA's."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl.experimental.sdft import SDFTConfig, SDFTTrainer

    rows = [{"prompt": [{"role": "user", "content": p}], "privileged_context": inputs.CONTEXT}
            for p in prompts]  # fmt: skip
    args = SDFTConfig(
        output_dir=out_dir, per_device_train_batch_size=BATCH, gradient_accumulation_steps=1,
        num_generations=1, max_steps=steps, max_completion_length=max_new_tokens,
        temperature=TEMPERATURE, top_p=1.0, top_k=0, distillation_mode="topk_logits",
        distillation_topk=TOP_K, distillation_alpha=0.5, teacher_model_kind="base",
        learning_rate=LR, weight_decay=0.01, adam_beta1=0.9, adam_beta2=0.999,
        adam_epsilon=1e-8, max_grad_norm=1.0, lr_scheduler_type="constant", logging_steps=1,
        save_strategy="no", report_to="none", use_cpu=True, shuffle_dataset=False, seed=SEED,
        disable_tqdm=True, dataloader_num_workers=0, **extra,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return SDFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows), callbacks=callbacks
    )


def side(
    model_dir: str,
    pairs: list[list[str]],
    setting: str,
    steps: int,
    max_new_tokens: int,
    sides: list[str],
    loss_check: bool = False,
) -> dict[str, Any]:
    """`steps` steps of each side in `sides` ("trl", "opsa") in this process: with both, TRL
    trains and a callback runs one OPSA step after each TRL step. Per-step wall and CPU seconds
    and completion tokens of each side; with `loss_check`, each side's loss difference."""
    import torch

    from benchmarks.machine import peak_rss_mb
    from opsa.models.runtime import Runtime, using
    from opsa.prompting.sets import batch_schedule

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    spec = SETTINGS[setting]
    items, contexts = prompt_items(pairs)
    config = opsa_config(steps, max_new_tokens, torch.get_num_threads())
    config = config.model_copy(update={"mixed_precision": spec["mixed_precision"]})
    schedule = batch_schedule(len(items), BATCH, config.epochs, SEED)[:steps]
    order = [items[i].prompt for batch in schedule for i in batch]
    result: dict[str, Any] = {"opsa": [], "trl": []}
    with (
        tempfile.TemporaryDirectory(prefix="opsa-bench-row1-") as tmp,
        using(Runtime(backend=spec["backend"])),
    ):
        trainer, clock = None, None
        if "trl" in sides:  # first: its Accelerator fixes the process's mixed precision
            clock = _alternation()
            trainer = build_trl(model_dir, order, steps, max_new_tokens, spec["trl"],
                                f"{tmp}/trl", [clock])  # fmt: skip
        stepper = None
        if "opsa" in sides:
            stepper = OPSAStepper(model_dir, items, contexts, config, f"{tmp}/opsa")
            if stepper.run.schedule != schedule:
                raise RuntimeError("OPSA's batch schedule is not the one TRL was given")
        if trainer is not None:
            clock.opsa = stepper
            trainer.train()
            result["trl"] = clock.trl_steps()
        else:
            for _ in range(steps):
                stepper.step()
        if stepper is not None:
            result["opsa"] = stepper.steps
        if loss_check:
            result["loss_difference"] = {
                "ours": stepper.loss_difference() if stepper else None,
                "peer": trl_loss_difference(trainer) if trainer else None,
            }
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result["cpu_affinity"] = sorted(os.sched_getaffinity(0))
    return result


def trl_loss_difference(trainer: Any) -> dict[str, float]:
    """TRL's loss of one fixed batch (the first step's prompts, rolled out once by TRL itself)
    by its own `compute_loss`, with its forwards under accelerate's bf16 autocast (as it trains)
    and with that wrapper taken off (fp32), no gradient."""
    import torch

    rows = [trainer.train_dataset[i] for i in range(BATCH)]
    batch = trainer._prepare_training_batch(rows)
    models = [trainer.model, trainer.teacher_model]
    wrapped = [m.forward for m in models]
    values = {}
    with torch.no_grad():
        values["bf16"] = trainer.compute_loss(trainer.model, batch).item()
        try:
            for m in models:
                _drop_accelerate_autocast(m)
            values["no"] = trainer.compute_loss(trainer.model, batch).item()
        finally:
            for m, forward in zip(models, wrapped, strict=True):
                m.forward = forward
    tokens = int(batch["completion_mask"].sum())
    return loss_difference(values["no"], values["bf16"]) | {"tokens": tokens}


def _alternation() -> Any:
    """The TRL callback that times each TRL step (wall and CPU, from step begin to step end:
    rollout to optimizer step), runs one OPSA step after it, and reads the completion lengths
    TRL logs."""
    from transformers import TrainerCallback

    class Alternation(TrainerCallback):
        def __init__(self) -> None:
            self.opsa: OPSAStepper | None = None
            self.start = (0.0, 0.0)
            self.steps: list[dict[str, float]] = []
            self.lengths: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
            self.start = (time.perf_counter(), time.process_time())

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
            wall, cpu = time.perf_counter() - self.start[0], time.process_time() - self.start[1]
            self.steps.append({"seconds": round(wall, 4), "cpu_seconds": round(cpu, 4)})
            if self.opsa is not None:
                self.opsa.step()

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN003
            if logs and "completions/mean_length" in logs:
                self.lengths.append(logs["completions/mean_length"])

        def trl_steps(self) -> list[dict[str, float]]:
            if len(self.lengths) != len(self.steps):
                raise RuntimeError(
                    f"TRL logged {len(self.lengths)} completion lengths for {len(self.steps)} steps"
                )
            return [
                s | {"tokens": round(n * BATCH)}
                for s, n in zip(self.steps, self.lengths, strict=True)
            ]

    return Alternation()
