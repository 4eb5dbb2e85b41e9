"""The optimisation loop every stage shares: steps, accumulation, clipping, schedule, logging,
checkpoints, resume, NaN stop and the final checkpoint written only on success.

A stage supplies a `StepTask`: it turns the micro-batches of one step into gradients (calling
`backward_checked` for each) and may keep state that must survive a resume.

Precision: the student is stored in fp32 (master weights and AdamW state in fp32); with
`mixed_precision: bf16` its forward and the loss run under bf16 autocast (DeepSpeed's bf16
mode on GPUs, with its fp32 master copy).

Processes: under `accelerate launch` each process takes every N-th item of a step's batch, all
processes run the same number of micro-batches (an empty one runs a zero-loss forward and
backward, so every collective is matched), and the logged values are global means.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from tqdm.auto import tqdm

from opsa.errors import InputError
from opsa.models import runtime
from opsa.prompting.sets import batch_schedule
from opsa.records import atomic_path, read_jsonl, write_json
from opsa.training import checkpoint as ckpt
from opsa.training.config import TrainConfig
from opsa.training.model_card import model_card
from opsa.training.optim import build_optimizer, build_scheduler
from opsa.training.trainlog import append_row, peak_memory_mb, reset_peak_memory, truncate_log

log = logging.getLogger(__name__)
LOG_NAME = "train_log.jsonl"


class NonFiniteLoss(RuntimeError):
    pass


@dataclass
class StepStats:
    """This process's share of a step, as sums: the loop adds them over processes and logs
    `loss` = loss_sum / tokens and each extra `name` = sum / count."""

    loss_sum: float  # sum of the per-token losses
    tokens: int  # loss tokens
    extra: dict[str, tuple[float, float]] = field(default_factory=dict)  # name: (sum, count)


class StepTask(Protocol):
    def backward(self, micro_batches: list[list[int]], step: int) -> StepStats: ...

    def after_optimizer_step(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def write_outputs(self, out_dir: Path) -> None: ...


@dataclass
class Progress:
    """Optimiser steps done; with the seeded batch schedule this is the data position."""

    step: int = 0
    task: StepTask | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "task": self.task.state_dict() if self.task else {}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = state["step"]
        if self.task:
            self.task.load_state_dict(state["task"])


@dataclass
class Run:
    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    config: TrainConfig
    schedule: list[list[int]]
    progress: Progress
    modules: dict[str, torch.nn.Module] = field(default_factory=dict)  # also checkpointed


def start_run(
    model_dir: str | Path, config: TrainConfig, num_items: int, work_dir: str | Path
) -> Run:
    """Seed, load the student, build optimiser and schedule, and wrap them for accelerate
    (with the configured trackers writing under `work_dir`/trackers)."""
    schedule = batch_schedule(
        num_items,
        config.batch_size,
        config.epochs,
        config.seed,
        config.drop_last_batch,
        config.prompt_fraction,
    )
    accelerator = Accelerator(
        step_scheduler_with_optimizer=False,
        log_with=check_trackers(config.report_to) or None,
        project_dir=str(Path(work_dir) / "trackers"),
    )
    if config.cpu_threads is not None:
        torch.set_num_threads(config.cpu_threads)
    set_seed(config.seed)
    model = runtime.current().load_model(model_dir, "student", config.trust_remote_code, "float32")
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    total = min(len(schedule), config.max_steps or len(schedule))
    schedule = schedule[:total]
    model, optimizer = accelerator.prepare(model, build_optimizer(model, config))
    scheduler = build_scheduler(optimizer, total, config)
    return Run(accelerator, model, optimizer, scheduler, config, schedule, Progress())


def compute_precision(run: Run) -> torch.autocast:
    """The context a stage's forward and loss run in: bf16 autocast over the fp32 weights when
    the config asks for mixed precision (backward runs outside it)."""
    return torch.autocast(
        run.accelerator.device.type,
        dtype=torch.bfloat16,
        enabled=run.config.mixed_precision == "bf16",
    )


def backward_checked(accelerator: Accelerator, loss: torch.Tensor, step: int) -> None:
    """Backpropagate `loss`, or stop before a non-finite loss reaches the weights (every
    process stops when any one's loss is non-finite: none is left waiting in a collective)."""
    bad = torch.tensor(float(not torch.isfinite(loss).item()), device=accelerator.device)
    if accelerator.num_processes > 1:
        bad = accelerator.reduce(bad, reduction="sum")
    if bad.item():
        raise NonFiniteLoss(f"step {step + 1}: loss is {loss.item()} (or another process's)")
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        # DeepSpeed divides by its accumulation steps; our loss is already a step token-mean.
        loss = loss * accelerator.gradient_accumulation_steps
    accelerator.backward(loss)


def global_count(accelerator: Accelerator, count: int) -> int:
    """A count summed over processes (token-mean denominators of a step)."""
    total = torch.tensor(count, device=accelerator.device)
    return int(accelerator.reduce(total, reduction="sum").item())


def micro_batches(batch: list[int], rank: int, processes: int, size: int) -> list[list[int]]:
    """This process's items of a step (every `processes`-th) in micro-batches of `size`; every
    process gets the same number of micro-batches, the last ones possibly empty."""
    per_process = math.ceil(len(batch) / processes)
    mine = batch[rank::processes]
    return [mine[i : i + size] for i in range(0, max(1, per_process), size)]


def global_means(accelerator: Accelerator, stats: StepStats) -> dict[str, float]:
    """The step's loss, token count and extras summed over processes and turned into means."""
    names = sorted(stats.extra)
    local = [stats.loss_sum, float(stats.tokens)]
    for name in names:
        local += list(stats.extra[name])
    total = accelerator.reduce(
        torch.tensor(local, dtype=torch.float64, device=accelerator.device), reduction="sum"
    ).tolist()
    row = {"loss": total[0] / max(1.0, total[1]), "tokens": int(total[1])}
    for i, name in enumerate(names):
        row[name] = round(total[2 + 2 * i] / max(1.0, total[3 + 2 * i]), 6)
    return row


def train(
    run: Run,
    task: StepTask,
    tokenizer: Any,
    work_dir: str | Path,
    out_dir: str | Path,
    identity: dict[str, Any],
) -> None:
    """Run (or resume) every step of `run.schedule`, then write out_dir atomically."""
    work_dir, acc = Path(work_dir), run.accelerator
    run.progress.task = task
    state = ckpt.TrainingState(run.model, run.optimizer, run.scheduler, run.progress, run.modules)
    ckpt.claim_work_dir(work_dir, identity, acc)
    last = ckpt.latest_checkpoint(work_dir, acc)
    if last is not None:
        state.load(acc, last)
        log.info("resumed from %s at step %d", last, run.progress.step)
    if acc.is_main_process:
        truncate_log(work_dir / LOG_NAME, run.progress.step)
    if run.config.report_to:
        acc.init_trackers(work_dir.name, config=_scalars(run.config.model_dump()))
    total = len(run.schedule)
    for step in tqdm(
        range(run.progress.step, total),
        initial=run.progress.step,
        total=total,
        desc="train",
        unit="step",
        disable=not acc.is_main_process,
    ):
        row = train_step(run, task, step, last)
        if acc.is_main_process:
            append_row(work_dir / LOG_NAME, row)
        if run.config.report_to:
            acc.log(_scalars(row), step=row["step"])
        if (step + 1) % run.config.checkpoint_every == 0 and step + 1 < total:
            last = ckpt.save_checkpoint(acc, work_dir, step + 1, run.config.keep_checkpoints, state)
    if run.config.report_to:
        acc.end_training()
    _save_final(run, task, tokenizer, work_dir, Path(out_dir), identity)


def check_trackers(names: list[str]) -> list[str]:
    """The trackers asked for, each with its package installed (an InputError names one
    missing)."""
    for name in names:
        if importlib.util.find_spec(name) is None:
            raise InputError(
                f"training.report_to: '{name}' needs the {name} package (pip install {name})"
            )
    return names


def _scalars(values: dict[str, Any]) -> dict[str, int | float | str | bool]:
    """What a tracker can store: the numbers, strings and flags of `values`."""
    return {k: v for k, v in values.items() if isinstance(v, int | float | str | bool)}


def train_step(run: Run, task: StepTask, step: int, last: Path | None = None) -> dict[str, Any]:
    """One optimizer step: the task's backward over the step's micro-batches, clipping, the
    optimizer and schedule; its log row. `last` (the newest checkpoint) names where a
    non-finite gradient leaves the run."""
    acc = run.accelerator
    reset_peak_memory()
    start = time.perf_counter()
    parts = micro_batches(
        run.schedule[step], acc.process_index, acc.num_processes, run.config.micro_batch_size
    )
    lr = run.optimizer.param_groups[0]["lr"]
    try:
        stats = task.backward(parts, step)
        grad_norm = acc.clip_grad_norm_(run.model.parameters(), run.config.grad_clip)
        grad_norm = float(grad_norm) if grad_norm is not None else math.nan
        if not math.isfinite(grad_norm) and acc.distributed_type != DistributedType.DEEPSPEED:
            raise NonFiniteLoss(f"step {step + 1}: gradient norm is {grad_norm}")
    except NonFiniteLoss as e:
        kept = last if last is not None else "none (no checkpoint yet)"
        raise RuntimeError(f"{e}; training stopped, last good checkpoint: {kept}") from None
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    task.after_optimizer_step()
    run.progress.step = step + 1
    means = global_means(acc, stats)
    return {
        "step": step + 1,
        "loss": means.pop("loss"),
        "lr": lr,
        "grad_norm": grad_norm,
        "tokens": means.pop("tokens"),
        "seconds": round(time.perf_counter() - start, 3),
        "peak_mem_mb": round(peak_memory_mb(), 1),
        **means,
    }


def _save_final(
    run: Run,
    task: StepTask,
    tokenizer: Any,
    work_dir: Path,
    out_dir: Path,
    identity: dict[str, Any],
) -> None:
    acc = run.accelerator
    state = acc.get_state_dict(run.model)
    if acc.is_main_process:
        with atomic_path(out_dir) as tmp:
            acc.unwrap_model(run.model).save_pretrained(tmp, state_dict=state)
            tokenizer.save_pretrained(tmp)
            shutil.copyfile(work_dir / LOG_NAME, tmp / LOG_NAME)
            settings = run.config.model_dump()
            write_json(tmp / "train_config.json", settings)
            rows = read_jsonl(tmp / LOG_NAME) if (tmp / LOG_NAME).stat().st_size else []
            card = model_card(out_dir.name, identity, settings, rows)
            (tmp / "README.md").write_text(card, encoding="utf-8")
            task.write_outputs(tmp)
    acc.wait_for_everyone()
    log.info("wrote %s after %d steps", out_dir, run.progress.step)
