"""Load a prepared checkpoint directory (safetensors only, remote code only when asked).

Stages never call `load_model` themselves: they ask the runtime (`opsa.models.runtime`), which
decides device, dtype and attention and calls it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from opsa.errors import InputError


def load_tokenizer(model_dir: str | Path, trust_remote_code: bool = False) -> Any:
    _check_dir(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    model_dir: str | Path,
    dtype: str | torch.dtype = "float32",
    attention: str = "sdpa",
    trust_remote_code: bool = False,
) -> torch.nn.Module:
    _check_dir(model_dir)
    return AutoModelForCausalLM.from_pretrained(
        model_dir,
        dtype=getattr(torch, dtype) if isinstance(dtype, str) else dtype,
        attn_implementation=attention,
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
    ).eval()


def _check_dir(model_dir: str | Path) -> None:
    if not (Path(model_dir) / "config.json").is_file():
        raise InputError(f"{model_dir}: not a prepared model directory (no config.json)")
