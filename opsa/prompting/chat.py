"""Chat rendering: the one place a model's chat template is applied.

Every stage that prompts a model renders its chat here; contexts (`opsa.prompting.placement`)
build their messages and render through `render_chat`.
"""

from __future__ import annotations

from typing import Any

from opsa.errors import InputError

Message = dict[str, str]


def render_chat(tokenizer: Any, messages: list[Message]) -> str:
    """The model's chat template applied to `messages`, ready for the assistant's reply."""
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(f"{tokenizer.name_or_path}: the tokenizer has no chat template")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def render_user(tokenizer: Any, prompt: str) -> str:
    """One user turn, ready for the assistant's reply."""
    return render_chat(tokenizer, [{"role": "user", "content": prompt}])


def render_prefilled(tokenizer: Any, prompt: str, prefill: str) -> str:
    """One user turn and the start of the assistant's reply (`prefill`), which the model goes on
    from: the prefix sits inside the assistant turn, after the template's assistant header."""
    return render_user(tokenizer, prompt) + prefill
