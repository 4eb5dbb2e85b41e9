"""Load a prepared checkpoint directory (safetensors only, remote code only when asked).

Stages never call `load_model` themselves: they ask the runtime (`opsa.models.runtime`), which
decides device, dtype and attention and calls it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from opsa.errors import InputError
from opsa.models.folder import check_chat_template, check_config, check_weights, first_line


def load_tokenizer(model_dir: str | Path, trust_remote_code: bool = False) -> Any:
    folder = Path(model_dir)
    check_config(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except Exception as e:  # the tokenizers library raises plain Exceptions for bad files
        raise InputError(
            f"{folder}: the tokenizer does not load ({type(e).__name__}: {first_line(e)})"
        ) from None
    check_chat_template(tokenizer, folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    model_dir: str | Path,
    dtype: str | torch.dtype = "float32",
    attention: str = "sdpa",
    trust_remote_code: bool = False,
) -> torch.nn.Module:
    return _load(AutoModelForCausalLM, model_dir, dtype, trust_remote_code, attention)


def load_classifier(
    model_dir: str | Path, dtype: str | torch.dtype = "float32", trust_remote_code: bool = False
) -> torch.nn.Module:
    """A sequence classifier (a judge's), with the same checks and loader as a causal LM."""
    return _load(AutoModelForSequenceClassification, model_dir, dtype, trust_remote_code)


def _load(
    auto: Any,
    model_dir: str | Path,
    dtype: str | torch.dtype,
    trust_remote_code: bool,
    attention: str | None = None,
) -> torch.nn.Module:
    """A checked folder's model from safetensors only, in eval mode."""
    check_config(Path(model_dir))
    check_weights(Path(model_dir))
    options = {} if attention is None else {"attn_implementation": attention}
    return auto.from_pretrained(
        model_dir,
        dtype=getattr(torch, dtype) if isinstance(dtype, str) else dtype,
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
        **options,
    ).eval()
