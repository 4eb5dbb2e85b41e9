"""How many tokens a prepared model can attend to, and the check that prompts fit in it.

A prompt that, with the tokens it may generate, runs past the model's positions gives
degraded output with only a transformers warning; here it is an error naming the prompt.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from opsa.errors import InputError

log = logging.getLogger(__name__)

LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def max_model_length(model_dir: str | Path) -> int | None:
    """The model's context length from its config.json (None when the config names none)."""
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    for block in (config, config.get("text_config") or {}):
        for key in LENGTH_KEYS:
            if isinstance(block.get(key), int):
                return block[key]
    return None


def check_prompt_lengths(
    model_dir: str | Path,
    tokenizer: Any,
    ids: list[str],
    texts: list[str],
    max_new_tokens: int,
    where: str | Path,
) -> None:
    """Every rendered prompt plus `max_new_tokens` fits in the model's context; the longest
    prompt that does not is an InputError naming it."""
    limit = max_model_length(model_dir)
    if limit is None:
        log.warning("%s: config.json names no context length; prompt lengths unchecked", model_dir)
        return
    lengths = [len(t) for t in tokenizer(texts, add_special_tokens=False).input_ids]
    longest = max(range(len(texts)), key=lengths.__getitem__, default=None)
    if longest is not None and lengths[longest] + max_new_tokens > limit:
        raise InputError(
            f"{where}: prompt id '{ids[longest]}' has {lengths[longest]} tokens; with "
            f"max_new_tokens {max_new_tokens} it exceeds the model's context of {limit} tokens "
            f"({model_dir}/config.json)"
        )
