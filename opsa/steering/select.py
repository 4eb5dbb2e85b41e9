"""Choosing the refusal direction as the refusal-direction method does (Arditi et al., 2024),
which SafeSteer builds on: not one fixed layer and position, but a scan.

Every candidate is the difference of mean hidden states (harmful minus harmless prompts) at
the input of one decoder layer and one post-instruction position (the last `positions` tokens
of the prompt rendered with its chat template and generation prompt). Each candidate is scored
on held-out validation prompts of both kinds, by the model's refusal score at the first answer
position: the log-odds that the next token is one of the refusal openers (`refusal_tokens`,
e.g. "I" of "I'm sorry" / "I cannot"):

- `bypass`: the refusal score on harmful prompts with the direction ablated (projected out of
  the input of every decoder layer and of the final norm): how much refusal it carries;
- `induce`: the refusal score on harmless prompts with the direction added at its layer:
  whether it causes refusal;
- `kl`: KL(base || ablated) of the next-token distribution on harmless prompts: how much else
  ablating it changes.

Candidates in the last `1 - max_layer_fraction` of the layers, or with `induce` <= `min_induce`
(0 as in the method: the added direction makes refusal the likelier opener), or with `kl` above
`max_kl`, are filtered out; the chosen one has the lowest `bypass`. Every score is kept, so
the scan is reported whole. When no candidate passes, the steered teacher cannot be made to
refuse: the step stops with one line, unless `override` takes the configured layer and
position anyway.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from opsa.errors import InputError
from opsa.prompting.chat import render_user
from opsa.records import write_json
from opsa.steering.direction import (
    DirectionSearch,
    DirectionSettings,
    RefusalDirection,
    extract_direction,
    resolve_layer,
)
from opsa.steering.hook import Steering, decoder_layers, steered

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    layer: int
    position: int
    bypass: float
    induce: float
    kl: float
    kept: bool
    why: str  # "" when kept, else the filter that dropped it


def refusal_ids(tokenizer: Any, openers: list[str]) -> list[int]:
    """The first token of each opener, as it starts an answer (distinct ids)."""
    ids = []
    for text in openers:
        tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not tokens:
            raise InputError(f"refusal token '{text}': the tokenizer gives no token")
        ids.append(tokens[0])
    return sorted(set(ids))


def encode(tokenizer: Any, prompts: list[str]) -> dict[str, torch.Tensor]:
    """Left-padded chat prompts, so position -k is the k-th token from the end of every row."""
    texts = [render_user(tokenizer, p) for p in prompts]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    mask = batch["attention_mask"]
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # each row's own positions, pads aside
    return {"input_ids": batch["input_ids"], "attention_mask": mask, "position_ids": positions}


@torch.no_grad()
def position_means(
    model: torch.nn.Module, tokenizer: Any, prompts: list[str], positions: int, batch_size: int
) -> torch.Tensor:
    """Mean (float64) input of every decoder layer at the last `positions` prompt positions:
    [layers, positions, hidden]."""
    total: torch.Tensor | None = None
    for start in range(0, len(prompts), batch_size):
        batch = encode(tokenizer, prompts[start : start + batch_size])
        out = model(**batch, output_hidden_states=True)
        layers = torch.stack(out.hidden_states[:-1])  # inputs of layers 0..L-1
        chunk = layers[:, :, -positions:, :].double().sum(dim=1)
        total = chunk if total is None else total + chunk
    assert total is not None
    return total / len(prompts)


def refusal_score(logits: torch.Tensor, ids: list[int]) -> float:
    """Mean over prompts of log(p / (1 - p)), p the next-token mass on the refusal ids."""
    probs = F.softmax(logits.double(), dim=-1)
    p = probs[:, ids].sum(dim=-1).clamp(1e-12, 1 - 1e-12)
    return float((p.log() - (1 - p).log()).mean())


@contextmanager
def ablated(model: torch.nn.Module, direction: torch.Tensor) -> Iterator[torch.nn.Module]:
    """The direction projected out of the input of every decoder layer and the final norm."""
    unit = direction / direction.norm()

    def remove(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        key = "hidden_states" if not args else None
        h = kwargs[key] if key else args[0]
        u = unit.to(h.device, h.dtype)
        h = h - (h @ u).unsqueeze(-1) * u
        return ((h, *args[1:]), kwargs) if key is None else (args, {**kwargs, key: h})

    modules = [*decoder_layers(model), model.get_decoder().norm]
    with ExitStack() as stack:
        for module in modules:
            handle = module.register_forward_pre_hook(remove, with_kwargs=True)
            stack.callback(handle.remove)
        yield model


@torch.no_grad()
def last_logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**batch).logits[:, -1, :]


def scan(
    model: torch.nn.Module,
    tokenizer: Any,
    harmful: list[str],
    harmless: list[str],
    search: DirectionSearch,
) -> tuple[RefusalDirection | None, list[Candidate]]:
    """The chosen direction (None: no candidate passes) and every candidate's scores. The last
    `search.validation` prompts of each list score; the others make the means."""
    k = search.validation
    if len(harmful) <= k or len(harmless) <= k:
        raise InputError(
            f"direction search: needs more than {k} prompts per class (validation), got "
            f"{len(harmful)} harmful and {len(harmless)} harmless"
        )
    depth = model.config.num_hidden_layers
    means = position_means(model, tokenizer, harmful[:-k], search.positions, search.batch_size)
    means -= position_means(model, tokenizer, harmless[:-k], search.positions, search.batch_size)
    ids = refusal_ids(tokenizer, search.refusal_tokens)
    bad, good = encode(tokenizer, harmful[-k:]), encode(tokenizer, harmless[-k:])
    base_good = F.log_softmax(last_logits(model, good).double(), dim=-1)
    candidates = []
    for layer in range(depth):
        for j in range(search.positions):
            vector = means[layer, j].float()
            position = j - search.positions
            skip = "late layer" if layer >= search.max_layer_fraction * depth else ""
            skip = skip or ("no difference" if float(vector.norm()) == 0.0 else "")
            if skip:  # a late layer, or a position every prompt shares (template tokens)
                candidates.append(Candidate(layer, position, *[math.nan] * 3, False, skip))
                continue
            with ablated(model, vector):
                bypass = refusal_score(last_logits(model, bad), ids)
                ablated_good = F.log_softmax(last_logits(model, good).double(), dim=-1)
            kl = float((base_good.exp() * (base_good - ablated_good)).sum(-1).mean())
            direction = RefusalDirection(vector, layer, position)
            with steered(model, Steering(direction, 1.0)):
                induce = refusal_score(last_logits(model, good), ids)
            why = (
                "induces no refusal"
                if induce <= search.min_induce
                else "kl too large"
                if kl > search.max_kl
                else ""
            )
            candidates.append(Candidate(layer, position, bypass, induce, kl, not why, why))
    kept = [c for c in candidates if c.kept]
    if not kept:
        return None, candidates
    best = min(kept, key=lambda c: (c.bypass, c.layer, -c.position))
    vector = means[best.layer, best.position + search.positions].float()
    log.info(
        "refusal direction chosen: layer %d, position %d (bypass %.2f, induce %.2f, KL %.3f) of "
        "%d kept candidates", best.layer, best.position, best.bypass, best.induce, best.kl,
        len(kept),
    )  # fmt: skip
    return RefusalDirection(vector, best.layer, best.position), candidates


def choose_direction(
    model: torch.nn.Module,
    tokenizer: Any,
    harmful: list[str],
    harmless: list[str],
    settings: DirectionSettings,
    scan_out: str | Path,
) -> RefusalDirection:
    """The scan's direction, its record at `scan_out`; no direction passing the filter stops
    here with one line, or (override) falls back to the configured layer and position."""
    search = settings.search or DirectionSearch()
    chosen, candidates = scan(model, tokenizer, harmful, harmless, search)
    gate: dict[str, Any] = {"passed": chosen is not None, "overridden": False}
    if chosen is None:
        scored = [c for c in candidates if not math.isnan(c.induce)]
        top = max(scored, key=lambda c: c.induce)
        what = (
            f"no (layer, position) of {len(scored)} scanned induces refusal on harmless prompts "
            f"(best: layer {top.layer}, position {top.position}, refusal log-odds "
            f"{top.induce:.2f}, needs > {search.min_induce:g}, with KL <= {search.max_kl:g})"
        )
        if not search.override:
            raise InputError(
                f"steering direction gate: {what}; set "
                "training.safesteer.direction.search.override: true to steer anyway"
            )
        layer = resolve_layer(model, settings.layer)
        chosen = extract_direction(model, tokenizer, harmful, harmless, settings)
        gate |= {
            "overridden": True,
            "warning": f"SafeSteer's direction gate overridden "
            f"(training.safesteer.direction.search.override): {what}; steering with the "
            f"configured layer {layer}, position {settings.position}",
        }
        log.warning("%s", gate["warning"])
    write_json(scan_out, scan_record(candidates, chosen) | {"gate": gate})
    return chosen


def scan_record(candidates: list[Candidate], chosen: RefusalDirection) -> dict[str, Any]:
    """The scan as JSON: every candidate's scores and the chosen (layer, position)."""
    rows = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(c).items()}
        for c in candidates
    ]
    return {"chosen": {"layer": chosen.layer, "position": chosen.position}, "candidates": rows}
