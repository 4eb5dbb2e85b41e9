"""prepare_model: turn a model reference into a local HF checkpoint directory.

Every later step loads models only from that directory (safetensors, no pickles).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from opsa.errors import InputError
from opsa.hub import hub_failure, hub_offline
from opsa.models.folder import check_config, check_weights, first_line
from opsa.models.reference import ModelSpec, kind_of, resolve_gguf
from opsa.records import atomic_path

log = logging.getLogger(__name__)
CLASSES = {
    "causal_lm": AutoModelForCausalLM,
    "sequence_classification": AutoModelForSequenceClassification,
}


def prepare_model(spec: ModelSpec, out_dir: str | Path) -> None:
    """Write an HF checkpoint (config, safetensors weights, tokenizer) for `spec` to `out_dir`."""
    dtype = getattr(torch, spec.dtype)
    kind = kind_of(spec.source)
    if kind == "local":
        if not Path(spec.source).is_dir():
            raise InputError(f"model source '{spec.source}': directory not found")
        check_config(Path(spec.source))
        check_weights(Path(spec.source))
    log.info("preparing %s (%s) as %s", spec.source, kind, spec.dtype)
    if kind == "gguf" and spec.task != "causal_lm":
        raise InputError(
            f"model source '{spec.source}': a GGUF file is a causal LM, not a {spec.task}"
        )
    if kind == "gguf":
        folder, name = resolve_gguf(spec.source)  # type: ignore[misc]
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = _from_gguf(folder, name, dtype)
    else:
        kwargs = {
            "revision": spec.revision,
            "trust_remote_code": spec.trust_remote_code,
            "local_files_only": hub_offline(),
        }
        try:
            tokenizer = AutoTokenizer.from_pretrained(spec.source, **kwargs)
            auto = CLASSES[spec.task]
            model = auto.from_pretrained(spec.source, dtype=dtype, use_safetensors=True, **kwargs)
        except OSError as e:
            if kind == "local":
                what = f"model source '{spec.source}': does not load ({first_line(e)})"
                raise InputError(what) from None
            what = f"model source '{spec.source}' (not a local directory, so a hub id)"
            raise InputError(hub_failure(what, e)) from None
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "opsa_source.json").write_text(json.dumps(spec.model_dump(), indent=2) + "\n")
    log.info("wrote %s (%.1fM parameters)", out_dir, model.num_parameters() / 1e6)


def _from_gguf(folder: Path, name: str, dtype: torch.dtype) -> torch.nn.Module:
    """Dequantise a GGUF file into a plain model that `save_pretrained` accepts.

    A GGUF-loaded model carries a quantization config that refuses to serialise, so its
    weights are copied into a model built from the same config without it.
    """
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=dtype)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if missing or unexpected:
        raise InputError(f"{folder / name}: weights do not match (missing {missing[:3]})")
    model.tie_weights()
    return model.eval()
