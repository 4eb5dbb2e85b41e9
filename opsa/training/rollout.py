"""Student and teacher prompts as token ids, and on-policy rollouts from the live student.

The student's prompt is rendered without context, the teacher's with the type-conditional
context; both are tokenised once, here, with add_special_tokens=False. Rollouts keep the
sampled token ids, which the teacher scores as they are (never decoded and re-encoded).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from opsa.contexts.placement import Context, render_prompt
from opsa.errors import InputError
from opsa.generation.engine import SamplingParams
from opsa.generation.hf import HFGenerator
from opsa.training.data import PromptItem


@dataclass(frozen=True)
class EncodedPrompt:
    id: str
    label: str
    student_text: str
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
        out.append(EncodedPrompt(item.id, item.label, student, s_ids, t_ids))
    return out


def stop_token_id(tokenizer: Any) -> int:
    """The id appended to a completion that stopped: the generator drops the stop token, and
    the student must still learn where to stop."""
    return int(tokenizer.eos_token_id)


def sample_completions(
    model: torch.nn.Module, tokenizer: Any, texts: list[str], params: SamplingParams
) -> list[list[int]]:
    """One sampled completion per rendered prompt, as token ids ending with the stop token
    when the model stopped (cut at the first one: nothing after it is kept)."""
    was_training = model.training
    model.eval()
    try:
        with _full_weights(model):
            completions = HFGenerator(model, tokenizer, desc="rollout").generate(texts, params)
    finally:
        model.train(was_training)
    stop = stop_token_id(tokenizer)
    return [c[0].token_ids + ([stop] if c[0].finish_reason == "stop" else []) for c in completions]


def _full_weights(model: torch.nn.Module) -> AbstractContextManager:
    """Gather ZeRO-3 partitioned weights for generation (decoding shard by shard is ~100x
    slower); a no-op for an unpartitioned model."""
    params = list(model.parameters())
    if not any(hasattr(p, "ds_id") for p in params):
        return nullcontext()
    import deepspeed  # imported lazily: it initialises CUDA

    return deepspeed.zero.GatheredParameters(params)
