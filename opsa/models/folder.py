"""A model folder checked before anything loads from it, so a damaged or unusable folder is
one line naming the file instead of a library's traceback.

- `config.json` must parse (a half-written one is the common case after a killed copy);
- weights must be safetensors whose headers cover their files (a truncated shard fails
  here), every shard of an index present; a folder whose only weights are pickles
  (`pytorch_model.bin`, `*.pt`) is named as such, with the one command that converts it;
- the chat template must render a plain conversation inside transformers' sandbox: a template
  that the sandbox refuses (one that reaches for Python internals) is named by its file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opsa.errors import InputError
from opsa.records import read_json

PICKLES = ("pytorch_model*.bin", "*.pt", "*.pth", "*.ckpt")
PROBE = [{"role": "user", "content": "Hello"}]


def check_config(folder: Path) -> None:
    path = folder / "config.json"
    if not path.is_file():
        raise InputError(f"{folder}: not a prepared model directory (no config.json)")
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(
            f"{path}: not valid JSON ({first_line(e)}): damaged or half-written"
        ) from None


def check_weights(folder: Path) -> None:
    from safetensors import SafetensorError, safe_open

    shards = sorted(folder.glob("*.safetensors"))
    if not shards:
        pickles = sorted(p.name for pattern in PICKLES for p in folder.glob(pattern))
        if pickles:
            raise InputError(
                f"{folder}: its weights are only pickles ({pickles[0]}), which opsa never "
                'loads; convert them once, where you trust the file: python -c "import '
                "transformers as t; t.AutoModelForCausalLM.from_pretrained('"
                f"{folder}').save_pretrained('{folder}-safetensors')\""
            )
        raise InputError(f"{folder}: no weights (no .safetensors file)")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        listed = set(read_json(index).get("weight_map", {}).values())
        missing = sorted(name for name in listed if not (folder / name).is_file())
        if missing:
            raise InputError(f"{index}: lists {missing[0]}, which is not in the folder")
    for shard in shards:
        try:
            with safe_open(str(shard), "pt") as f:
                f.keys()
        except SafetensorError as e:
            raise InputError(f"{shard}: damaged safetensors file ({first_line(e)})") from None


def check_chat_template(tokenizer: Any, folder: Path) -> None:
    """Render a one-message conversation; a sandbox refusal or a template error names the
    template's file."""
    if getattr(tokenizer, "chat_template", None) is None:
        return
    from jinja2.exceptions import SecurityError, TemplateError

    file = folder / "chat_template.jinja"
    where = file if file.is_file() else folder / "tokenizer_config.json"
    try:
        tokenizer.apply_chat_template(PROBE, tokenize=False, add_generation_prompt=True)
    except SecurityError as e:
        raise InputError(
            f"{where}: the chat template is not allowed by the sandbox ({first_line(e)})"
        ) from None
    except TemplateError as e:
        raise InputError(f"{where}: the chat template does not render ({first_line(e)})") from None


def first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
