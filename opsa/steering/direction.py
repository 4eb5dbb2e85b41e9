"""The refusal direction: the difference of mean hidden states between harmful and harmless
prompts, at the input of one decoder layer and one position of the rendered prompt.

As in the refusal-direction pipeline SafeSteer builds on, the direction is the raw difference
of means (not normalised), so a steering coefficient of 1 moves a harmless prompt's state at
that layer by the average harmful-minus-harmless gap. The position counts from the end of the
prompt rendered with the chat template and its generation prompt (-1: the last token before
the answer). Each prompt runs alone (no padding), so the means are exact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from opsa.errors import InputError
from opsa.models import runtime
from opsa.models.load import load_tokenizer
from opsa.prompting.chat import render_user
from opsa.records import atomic_path, write_json
from opsa.steering.prompts import prompt_texts

log = logging.getLogger(__name__)


class DirectionSearch(BaseModel):
    """The scan over (layer, position) candidates (opsa.steering.select) and its gate."""

    model_config = ConfigDict(extra="forbid")

    positions: int = Field(5, ge=1, description="post-instruction positions scanned (from the end)")
    max_layer_fraction: float = Field(
        0.8, gt=0.0, le=1.0, description="layers at or above this share of the depth are skipped"
    )
    max_kl: float = Field(0.1, gt=0.0, description="most KL on harmless prompts when ablated")
    min_induce: float = Field(
        0.0, description="least refusal log-odds on harmless prompts with the direction added"
    )
    validation: int = Field(16, ge=2, description="held-out prompts per class that score")
    refusal_tokens: list[str] = Field(
        ["I", "As", "Sorry"], min_length=1, description="answer openers that count as refusal"
    )
    batch_size: int = Field(16, ge=1)
    override: bool = Field(
        False,
        description="when no candidate passes, use the configured layer and position anyway "
        "(the report says so in a warning)",
    )


class DirectionSettings(BaseModel):
    """Where the direction is read and where it is added."""

    model_config = ConfigDict(extra="forbid")

    layer: int | None = Field(
        None, ge=0, description="decoder layer whose input is read and steered (None: middle)"
    )
    position: int = Field(-1, le=-1, description="prompt position from the end (-1: last)")
    max_prompts: int | None = Field(None, ge=1, description="prompts per class (None: all)")
    search: DirectionSearch | None = Field(
        default_factory=DirectionSearch,
        description="choose layer and position by the refusal-direction scan (None: take "
        "`layer` and `position` as they are)",
    )


@dataclass(frozen=True)
class RefusalDirection:
    vector: torch.Tensor  # [hidden], float32
    layer: int
    position: int

    def save(self, path: str | Path, counts: dict[str, int]) -> None:
        """A safetensors file: the vector, with layer, position and prompt counts as metadata."""
        meta = {"layer": str(self.layer), "position": str(self.position)}
        meta |= {f"prompts_{name}": str(n) for name, n in counts.items()}
        with atomic_path(path) as tmp:
            save_file({"direction": self.vector.contiguous()}, str(tmp), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> RefusalDirection:
        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
                tensors = {name: f.get_tensor(name) for name in f.keys()}
        except (OSError, SafetensorError) as e:
            raise InputError(f"{path}: not a readable direction file ({e})") from None
        if "direction" not in tensors or "layer" not in meta or "position" not in meta:
            raise InputError(f"{path}: needs tensor 'direction' and metadata layer, position")
        return cls(tensors["direction"].float(), int(meta["layer"]), int(meta["position"]))


def resolve_layer(model: torch.nn.Module, layer: int | None) -> int:
    """The configured layer, checked against the model's depth; None is the middle layer."""
    depth = model.config.num_hidden_layers
    chosen = depth // 2 if layer is None else layer
    if not 0 <= chosen < depth:
        raise InputError(f"steering layer {chosen}: the model has layers 0..{depth - 1}")
    return chosen


@torch.no_grad()
def mean_state(
    model: torch.nn.Module, tokenizer: Any, prompts: list[str], layer: int, position: int
) -> torch.Tensor:
    """Mean (float64) of the input to decoder layer `layer` at `position` over `prompts`."""
    device = next(model.parameters()).device
    total = torch.zeros(model.config.hidden_size, dtype=torch.float64, device=device)
    for prompt in prompts:
        ids = tokenizer(render_user(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        if len(ids) < -position:
            raise InputError(f"prompt '{prompt[:40]}': {len(ids)} tokens, position {position}")
        out = model(input_ids=torch.tensor([ids], device=device), output_hidden_states=True)
        total += out.hidden_states[layer][0, position].double()
    return total / len(prompts)


def extract_direction(
    model: torch.nn.Module,
    tokenizer: Any,
    harmful: list[str],
    harmless: list[str],
    settings: DirectionSettings,
) -> RefusalDirection:
    """mean(harmful) - mean(harmless) at the configured layer and position."""
    if not harmful or not harmless:
        raise InputError("the refusal direction needs harmful and harmless prompts")
    layer = resolve_layer(model, settings.layer)
    diff = mean_state(model, tokenizer, harmful, layer, settings.position) - mean_state(
        model, tokenizer, harmless, layer, settings.position
    )
    return RefusalDirection(diff.float().cpu(), layer, settings.position)


def write_direction(
    model_dir: str | Path,
    harmful_path: str | Path,
    harmless_path: str | Path,
    settings: DirectionSettings,
    out: str | Path,
    trust_remote_code: bool = False,
    scan_out: str | Path | None = None,
) -> RefusalDirection:
    """Extract the direction of the model in `model_dir` (on the runtime's teacher placement)
    from two prompt sets, and save it to `out`. With `scan_out` and `settings.search`, the
    layer and position come from the scan (opsa.steering.select), whose scores go to
    `scan_out`."""
    from opsa.steering.select import choose_direction

    harmful = prompt_texts(harmful_path, settings.max_prompts)
    harmless = prompt_texts(harmless_path, settings.max_prompts)
    model = runtime.current().load_model(model_dir, "teacher", trust_remote_code)
    tokenizer = load_tokenizer(model_dir, trust_remote_code)
    if scan_out is not None and settings.search is not None:
        direction = choose_direction(model, tokenizer, harmful, harmless, settings, scan_out)
    else:
        direction = extract_direction(model, tokenizer, harmful, harmless, settings)
        if scan_out is not None:  # the rule's output says the scan was off
            chosen = {"layer": direction.layer, "position": direction.position}
            write_json(scan_out, {"scanned": False, "chosen": chosen, "candidates": []})
    direction.save(out, {"harmful": len(harmful), "harmless": len(harmless)})
    log.info(
        "refusal direction: layer %d, position %d, norm %.3f, from %d harmful and %d harmless",
        direction.layer, direction.position, direction.vector.norm(), len(harmful), len(harmless),
    )  # fmt: skip
    return direction
