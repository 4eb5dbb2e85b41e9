"""The Hugging Face model card (README.md) every trained model folder carries, so a checkpoint
explains itself when it is loaded or shared: what trained it, from which model, on which
inputs (by content hash), with which settings, and how the run went. Written with the weights,
at the end of training; the evaluation is in the pipeline's report, not here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from opsa.records import read_json

STAGES = {
    "opsa": "on-policy self-distillation (OPSA): the student's own rollouts, scored token by "
    "token by a frozen copy of the base model given a privileged safety context",
    "safesteer": "SafeSteer: the student's rollouts, the loss on safety tokens only, towards "
    "the base model steered along its refusal direction",
    "sft": "supervised fine-tuning on (prompt, response) pairs (the off-policy self-distillation "
    "or external-teacher baseline)",
}


def base_source(model_dir: str | Path) -> str | None:
    """The model the base folder was prepared from (its opsa_source.json), if recorded."""
    path = Path(model_dir) / "opsa_source.json"
    return read_json(path).get("source") if path.is_file() else None


def model_card(
    name: str, identity: dict[str, Any], settings: dict[str, Any], log_rows: list[dict]
) -> str:
    """README.md text: YAML metadata, then what made the model."""
    stage = identity["stage"]
    source = base_source(identity["model_dir"])
    meta: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": list(dict.fromkeys(["opsa", "safety-alignment", stage])),
    }
    if source and not source.startswith(("package:", "/", ".")) and not source.endswith(".gguf"):
        meta["base_model"] = source  # a hub id: the Hub links the two
    last = log_rows[-1] if log_rows else {}
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False).strip(),
        "---",
        "",
        f"# {name}",
        "",
        f"Trained by the opsa pipeline with {STAGES.get(stage, stage)}.",
        "",
        f"- base model: `{source or identity['model_dir']}`",
        f"- steps: {last.get('step', 0)}; last loss {last.get('loss', '–')}; "
        f"tokens in the loss over the run: {sum(r.get('tokens', 0) for r in log_rows)}",
        "- evaluation: the pipeline's report (`results/report/summary.md`), not this card",
        "",
        "## Inputs (SHA-256 of each file)",
        "",
        *(f"- {k}: `{v}`" for k, v in identity["inputs"].items()),
        "",
        "## Training settings",
        "",
        "```json",
        json.dumps(settings, indent=2, sort_keys=True, default=str),
        "```",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'model = AutoModelForCausalLM.from_pretrained("<this folder>")',
        'tokenizer = AutoTokenizer.from_pretrained("<this folder>")',
        "```",
        "",
        "`train_log.jsonl` holds every step's loss, gradient norm, learning rate and tokens; "
        "`train_config.json` the settings above.",
    ]
    return "\n".join(lines) + "\n"
