"""OPSA: the student samples without context; the frozen initial model (or an EMA of the
student) scores those very token ids with the type-conditional context; the loss is a
per-token divergence on completion tokens, token-mean over the step, gradient through the
student only."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import gather_object

from opsa.distill.diagnostics import TokenDiagnostics, step_sums
from opsa.distill.sequences import PackedBatch, pack
from opsa.generation.engine import SamplingParams
from opsa.models import runtime
from opsa.models.load import load_tokenizer
from opsa.prompting.placement import Context
from opsa.prompting.sets import PromptItem, load_labelled_prompts, load_selected_contexts
from opsa.steering.hook import Steering
from opsa.training.chunked import chunked_terms, loss_hidden
from opsa.training.config import OPSAConfig
from opsa.training.identity import run_identity
from opsa.training.loop import (
    Run,
    StepStats,
    backward_checked,
    compute_precision,
    global_count,
    start_run,
    train,
)
from opsa.training.rollout import EncodedPrompt, Rollouts, encode_prompts
from opsa.training.teacher_prefix import TeacherPrefix
from opsa.training.token_loss import DistillSpec, distill_from_hidden

log = logging.getLogger(__name__)
DIAGNOSTICS_NAME = "token_diagnostics.json"


def train_opsa(
    model_dir: str | Path,
    harmful_path: str | Path,
    benign_path: str | Path,
    selected_contexts_path: str | Path,
    config: OPSAConfig,
    out_dir: str | Path,
    work_dir: str | Path,
) -> None:
    """Train with OPSA; out_dir (HF checkpoint, train_log.jsonl, token_diagnostics.json)
    appears only when every step has run. Checkpoints in work_dir make it resumable."""
    items = load_labelled_prompts(harmful_path, benign_path)
    c_h, c_b = load_selected_contexts(selected_contexts_path)
    inputs = {"harmful": harmful_path, "benign": benign_path, "contexts": selected_contexts_path}
    identity = run_identity("opsa", config, model_dir, inputs)
    contexts = {"harmful": c_h, "benign": c_b}
    train_on_policy(model_dir, items, contexts, config, out_dir, work_dir, identity)


def train_on_policy(
    model_dir: str | Path,
    items: list[PromptItem],
    contexts: dict[str, Context | None],
    config: OPSAConfig,
    out_dir: str | Path,
    work_dir: str | Path,
    identity: dict[str, Any],
    steering: Steering | None = None,
) -> None:
    """The on-policy loop: the teacher scores the student's rollouts with the context of each
    prompt's label, and with `steering` on its hidden states when given (SafeSteer)."""
    run, task = build_on_policy(model_dir, items, contexts, config, work_dir, steering)
    train(run, task, task.tokenizer, work_dir, out_dir, identity)


def build_on_policy(
    model_dir: str | Path,
    items: list[PromptItem],
    contexts: dict[str, Context | None],
    config: OPSAConfig,
    work_dir: str | Path,
    steering: Steering | None = None,
) -> tuple[Run, OPSATask]:
    """The run (student, optimizer, schedule) and the task (teacher, prompts, rollouts) that
    `loop.train` steps through; `loop.train_step` steps them one at a time (the benchmark)."""
    tokenizer = load_tokenizer(model_dir, config.trust_remote_code)
    prompts = encode_prompts(tokenizer, items, contexts, config.max_prompt_tokens)
    run = start_run(model_dir, config, len(items), work_dir)
    teacher = load_teacher(model_dir, config, run.accelerator.device)
    if steering is not None:
        steering.attach(teacher)
    if config.teacher == "ema":
        run.modules["ema_teacher"] = teacher
    rollouts = Rollouts.start(model_dir, tokenizer, config, prompts)
    return run, OPSATask(run, tokenizer, teacher, prompts, rollouts)


def load_teacher(model_dir: str | Path, config: OPSAConfig, device: Any) -> torch.nn.Module:
    """The initial model, loaded again from its directory (never a deep copy of the student):
    fp32 when it is an EMA of the student, else stored as `teacher_dtype`."""
    dtype = "float32" if config.teacher == "ema" else config.teacher_dtype
    teacher = runtime.current().load_model(model_dir, "teacher", config.trust_remote_code, dtype)
    teacher.requires_grad_(False)
    return teacher.eval()


class OPSATask:
    def __init__(
        self,
        run: Run,
        tokenizer: Any,
        teacher: torch.nn.Module,
        prompts: list[EncodedPrompt],
        rollouts: Rollouts,
    ) -> None:
        self.run = run
        self.config: OPSAConfig = run.config  # type: ignore[assignment]
        self.tokenizer = tokenizer
        self.teacher = teacher
        self.prompts = prompts
        self.rollouts = rollouts
        self.spec = DistillSpec.from_config(self.config)
        self.diagnostics = TokenDiagnostics(self.config.diagnostics_top_tokens)
        self.teacher_prefix = None  # an EMA teacher changes every step: nothing to reuse
        if self.config.reuse_teacher_prefix and self.config.teacher == "base":
            by_label: dict[str, list[list[int]]] = {}
            for p in prompts:
                by_label.setdefault(p.label, []).append(p.teacher_ids)
            self.teacher_prefix = TeacherPrefix(teacher, by_label)

    def sampling(self, step: int) -> SamplingParams:
        acc = self.run.accelerator
        return SamplingParams(
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            max_new_tokens=self.config.max_new_tokens,
            seed=(self.config.seed * 1_000_003 + step) * 1009 + acc.process_index,
            batch_size=self.config.generation_batch_size,
            samples=self.config.rollouts_per_prompt,
        )

    def backward(self, micro_batches: list[list[int]], step: int) -> StepStats:
        acc, cfg = self.run.accelerator, self.config
        prompts = [self.prompts[i] for mb in micro_batches for i in mb]
        student = acc.unwrap_model(self.run.model)
        ids = [p.student_ids for p in prompts]
        completions = (
            self.rollouts.sample(student, ids, self.sampling(step), step) if prompts else []
        )
        # rollouts_per_prompt samples of each prompt, in order: each is a sequence of its own
        n = cfg.rollouts_per_prompt
        prompts = [p for p in prompts for _ in range(n)]
        micro_batches = [[i for i in mb for _ in range(n)] for mb in micro_batches]
        local = sum(max(0, len(c) - cfg.skip_first_tokens) for c in completions)
        scale = acc.num_processes / max(1, global_count(acc, local))
        loss_sum, offsets, targets, values, start = 0.0, [], [], [], 0
        for mb in micro_batches:
            part = slice(start, start + len(mb))
            start += len(mb)
            batch = self.micro_step(prompts[part], completions[part], scale, step)
            if batch is not None:
                loss_sum += batch[3]
                offsets.append(batch[0])
                targets.append(batch[1])
                values.append(batch[2])
        mine = [torch.cat(x) if x else torch.zeros(0) for x in (offsets, targets, values)]
        everyone = gather_object([mine]) if acc.num_processes > 1 else [mine]
        for o, y, v in everyone:
            self.diagnostics.add(o.long(), y.long(), v)
        extra = step_sums(mine[0], mine[2]) | {"rollout_staleness": (self.rollouts.staleness, 1.0)}
        return StepStats(loss_sum, local, extra)

    def micro_step(
        self, prompts: list[EncodedPrompt], completions: list[list[int]], scale: float, step: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float] | None:
        """Teacher scoring (no grad), student forward, chunked loss, backward: (offsets,
        targets, per-token divergence, loss sum), or None for a micro-batch without loss
        tokens, which still runs a zero-loss forward and backward on a stand-in sequence
        (under DDP every process must join every gradient all-reduce)."""
        cfg, pad = self.config, self.tokenizer.pad_token_id
        s_ids = [p.student_ids for p in prompts]
        s_batch = pack(s_ids, completions, pad, cfg.skip_first_tokens) if prompts else None
        if s_batch is None or s_batch.num_tokens == 0:
            stand_in = [[pad] * (cfg.skip_first_tokens + 1)]
            self.micro_step(self.prompts[:1], stand_in, 0.0, step)
            return None
        t_batch = pack([p.teacher_ids for p in prompts], completions, pad, cfg.skip_first_tokens)
        total, values = self._loss(s_batch, t_batch, [p.label for p in prompts])
        backward_checked(self.run.accelerator, total * scale, step)
        return s_batch.offsets, s_batch.targets, values.cpu(), total.item()

    def _loss(
        self, s_batch: PackedBatch, t_batch: PackedBatch, labels: list[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        acc = self.run.accelerator
        with compute_precision(self.run):
            with torch.no_grad():
                h_t = self.teacher_hidden(t_batch, labels)
            h_s = loss_hidden(self.run.model, s_batch)
            return chunked_terms(
                lambda head, h, t, y: distill_from_hidden(self.spec, head, h, t, y),
                acc.unwrap_model(self.run.model).get_output_embeddings(),
                h_s,
                s_batch.targets,
                self.config.loss_chunk_size,
                self.teacher.get_output_embeddings(),
                h_t,
            )

    @torch.no_grad()
    def teacher_hidden(self, batch: PackedBatch, labels: list[str]) -> torch.Tensor:
        """The teacher's final hidden states at the loss positions (shared prefixes reused)."""
        if self.teacher_prefix is None:
            return loss_hidden(self.teacher, batch)
        return self.teacher_prefix.hidden(batch, labels)

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """EMA teacher: teacher <- decay * teacher + (1 - decay) * student."""
        if self.config.teacher != "ema":
            return
        student = self.run.accelerator.unwrap_model(self.run.model)
        for t, s in zip(self.teacher.parameters(), student.parameters(), strict=True):
            t.lerp_(s.detach().to(t.dtype), 1.0 - self.config.ema_decay)

    def state_dict(self) -> dict[str, Any]:
        return {"diagnostics": self.diagnostics.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.diagnostics.load_state_dict(state["diagnostics"])

    def write_outputs(self, out_dir: Path) -> None:
        self.diagnostics.write(out_dir / DIAGNOSTICS_NAME, self.tokenizer)
