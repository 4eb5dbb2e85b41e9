"""Student and teacher prompts as token ids, and on-policy rollouts from the live student.

The student's prompt is rendered without context, the teacher's with the type-conditional
context; both are tokenised once, here, with add_special_tokens=False. Rollouts start from the
student's prompt ids and keep the sampled token ids, which the teacher scores as they are
(never decoded and re-encoded).

Rollouts come from the backend the runtime picks (`Rollouts`): HF generates from the live
student itself; a vLLM engine colocated with the trainer gets the student's weights pushed
into it (in memory, never reloaded from disk) every `rollout_sync_every` optimizer steps, its
prefix cache dropped after each push. `staleness` is how many optimizer steps the weights that
sampled a step's rollouts are behind the student (0: on-policy), logged with every step.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from opsa.errors import InputError
from opsa.generation.backend import open_rollout_engine
from opsa.generation.engine import Completion, SamplingParams
from opsa.generation.hf import HFGenerator
from opsa.prompting.placement import Context, render_prompt
from opsa.prompting.sets import PromptItem

if TYPE_CHECKING:
    from opsa.generation.vllm import VLLMGenerator
    from opsa.training.config import OPSAConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedPrompt:
    id: str
    label: str
    student_ids: list[int]
    teacher_ids: list[int]


def encode_prompts(
    tokenizer: Any,
    items: list[PromptItem],
    contexts: dict[str, Context | None],
    max_tokens: int,
) -> list[EncodedPrompt]:
    """Render and tokenise each prompt for the student (no context) and the teacher
    (`contexts[label]`). A prompt over `max_tokens` is an error, never truncated."""
    out = []
    for item in items:
        student = render_prompt(tokenizer, item.prompt)
        teacher = render_prompt(tokenizer, item.prompt, contexts[item.label])
        s_ids = tokenizer(student, add_special_tokens=False)["input_ids"]
        t_ids = tokenizer(teacher, add_special_tokens=False)["input_ids"]
        if max(len(s_ids), len(t_ids)) > max_tokens:
            raise InputError(
                f"prompt id {item.id}: {max(len(s_ids), len(t_ids))} tokens with its context, "
                f"over max_prompt_tokens={max_tokens}"
            )
        out.append(EncodedPrompt(item.id, item.label, s_ids, t_ids))
    return out


def with_stop(c: Completion) -> list[int]:
    """A completion's ids ending with the stop token it stopped on (any of the model's stop
    ids; none when cut by length): the student must learn where, and how, it stopped."""
    return c.token_ids + ([c.stop_id] if c.stop_id is not None else [])


def sample_completions(
    model: torch.nn.Module, tokenizer: Any, prompt_ids: list[list[int]], params: SamplingParams
) -> list[list[int]]:
    """`params.samples` completions per prompt (in order) sampled by HF from the live `model`,
    as token ids ending with the stop token when the model stopped (cut at the first one:
    nothing after it is kept)."""
    was_training = model.training
    model.eval()
    try:
        with _full_weights(model):
            generator = HFGenerator(model, tokenizer, desc="rollout")
            completions = generator.generate_ids(prompt_ids, params)
    finally:
        model.train(was_training)
    return [with_stop(sample) for c in completions for sample in c]


class Rollouts:
    """On-policy rollouts of the student, on the runtime's rollout backend."""

    def __init__(self, tokenizer: Any, engine: VLLMGenerator | None, sync_every: int = 1) -> None:
        self.tokenizer = tokenizer
        self.engine: VLLMGenerator | None = engine  # None: HF on the live student
        self.sync_every = sync_every
        self.synced_step: int | None = None  # the optimizer step whose weights the engine holds
        self.staleness = 0

    @classmethod
    def start(
        cls, model_dir: str | Path, tokenizer: Any, config: OPSAConfig, prompts: list[EncodedPrompt]
    ) -> Rollouts:
        """Rollouts of `prompts` for `config`. A vLLM engine's KV cache is sized for one
        step's rollouts: its prompts (at most generation_batch_size at a time) times their
        samples, each up to the longest student prompt, a full completion and a spare token."""
        sequences = min(config.batch_size, config.generation_batch_size)
        sequences *= config.rollouts_per_prompt
        longest = max((len(p.student_ids) for p in prompts), default=config.max_prompt_tokens)
        tokens = longest + config.max_new_tokens + 1
        engine = open_rollout_engine(model_dir, config.trust_remote_code, sequences, tokens)
        return cls(tokenizer, engine, config.rollout_sync_every)

    def sample(
        self,
        student: torch.nn.Module,
        prompt_ids: list[list[int]],
        params: SamplingParams,
        step: int,
    ) -> list[list[int]]:
        """`params.samples` completions per prompt (in order) from the student after `step`
        optimizer steps. The engine gets the student's weights first when it has none yet
        (start, resume) or when they are `sync_every` steps old."""
        if self.engine is None:
            return sample_completions(student, self.tokenizer, prompt_ids, params)
        if self.synced_step is None or step - self.synced_step >= self.sync_every:
            self.push(student, step)
        self.staleness = step - self.synced_step
        return [with_stop(s) for c in self.engine.generate_ids(prompt_ids, params) for s in c]

    @torch.no_grad()
    def push(self, student: torch.nn.Module, step: int) -> None:
        """Copy the student's weights into the engine (gathered first under ZeRO-3)."""
        with _full_weights(student):
            self.engine.load_weights((n, p.detach()) for n, p in student.named_parameters())
        self.synced_step = step
        log.info("rollout engine: student weights after step %d pushed", step)


def _full_weights(model: torch.nn.Module) -> AbstractContextManager:
    """Gather ZeRO-3 partitioned weights for generation (decoding shard by shard is ~100x
    slower); a no-op for an unpartitioned model."""
    params = list(model.parameters())
    if not any(hasattr(p, "ds_id") for p in params):
        return nullcontext()
    import deepspeed  # imported lazily: it initialises CUDA

    return deepspeed.zero.GatheredParameters(params)
