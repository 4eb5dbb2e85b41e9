"""Safety tokens: the vocabulary entries the steering promotes most at the start of answers.

SafeSteer's selection, on the steered trajectory: for each prompt, `samples` continuations of
`positions - 1` tokens are sampled (seeded) from the *steered* model; the steered and the base
model then score the same ids, and at each of the first `positions` answer positions every
sample votes for the `inner_top_k` entries with the largest log-probability shift
log p_steered - log p_base. The `count` entries with the most votes (ties: larger total shift,
then smaller id) are the token set the loss is restricted to. Special tokens never vote;
positions after a sampled stop token are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator

from opsa.contexts.placement import render_prompt
from opsa.errors import InputError
from opsa.models import runtime
from opsa.models.load import load_tokenizer
from opsa.records import atomic_path, read_json, write_json
from opsa.steering.direction import RefusalDirection
from opsa.steering.hook import Steering, steered
from opsa.steering.prompts import prompt_texts


class TokenSelection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(50, ge=1, description="safety tokens kept")
    positions: int = Field(7, ge=1, description="first answer positions that vote")
    samples: int = Field(8, ge=1, description="sampled continuations per prompt")
    temperature: float = Field(1.0, gt=0.0)
    inner_top_k: int = Field(200, ge=1, description="entries each sample votes for per position")
    max_prompts: int | None = Field(16, ge=1, description="prompts that vote (None: all)")

    @model_validator(mode="after")
    def _enough_votes(self) -> TokenSelection:
        if self.inner_top_k < self.count:
            raise ValueError(
                f"inner_top_k ({self.inner_top_k}) must be at least count ({self.count})"
            )
        return self


@dataclass(frozen=True)
class SafetyToken:
    id: int
    text: str
    votes: int
    mean_shift: float  # mean log p_steered - log p_base over the voting records


class Ballot:
    """Votes and summed shifts over the vocabulary."""

    def __init__(self, vocab: int, banned: list[int]) -> None:
        self.votes = torch.zeros(vocab, dtype=torch.long)
        self.shift = torch.zeros(vocab, dtype=torch.float64)
        self.records = 0
        self.banned = torch.tensor(sorted(banned), dtype=torch.long)

    def add(self, delta: torch.Tensor, inner_top_k: int) -> None:
        """One record per row of `delta` [n, V]: a vote for its top entries."""
        delta = delta.double().cpu()
        delta[:, self.banned] = -torch.inf
        top = delta.topk(min(inner_top_k, delta.shape[-1]), dim=-1).indices.reshape(-1)
        self.votes.scatter_add_(0, top, torch.ones_like(top))
        self.shift += torch.where(torch.isfinite(delta), delta, 0.0).sum(0)
        self.records += delta.shape[0]

    def winners(self, count: int) -> list[tuple[int, int, float]]:
        """(id, votes, mean shift) of the `count` best, in a deterministic order."""
        order = sorted(
            (i for i in self.votes.nonzero().flatten().tolist()),
            key=lambda i: (-int(self.votes[i]), -float(self.shift[i]), i),
        )
        if len(order) < count:
            raise InputError(f"only {len(order)} tokens got votes, {count} asked")
        n = max(1, self.records)
        return [(i, int(self.votes[i]), float(self.shift[i]) / n) for i in order[:count]]


def select_safety_tokens(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: list[str],
    steering: Steering,
    settings: TokenSelection,
    seed: int,
) -> list[SafetyToken]:
    """The `settings.count` safety tokens of `model` steered by `steering`."""
    if not prompts:
        raise InputError("safety-token selection needs prompts")
    prompts = prompts[: settings.max_prompts]
    ballot = Ballot(len(tokenizer), special_ids(tokenizer))
    for i, prompt in enumerate(prompts):
        ids = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        generator = torch.Generator().manual_seed(seed * 1_000_003 + i)
        delta, live = answer_shifts(model, ids, steering, settings, generator, stop_ids(tokenizer))
        ballot.add(delta[live], settings.inner_top_k)
    return [
        SafetyToken(i, tokenizer.decode([i]), votes, shift)
        for i, votes, shift in ballot.winners(settings.count)
    ]


@torch.no_grad()
def answer_shifts(
    model: torch.nn.Module,
    prompt_ids: list[int],
    steering: Steering,
    settings: TokenSelection,
    generator: torch.Generator,
    stops: set[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p_steered - log p_base [samples * positions, V], live mask): every sample's first
    `positions` answer positions, on continuations sampled from the steered model. A position
    after a sampled stop token is not live."""
    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids] * settings.samples, device=device)
    with steered(model, steering):
        for _ in range(settings.positions - 1):
            logits = model(input_ids=ids).logits[:, -1].float().cpu()
            probs = F.softmax(logits / settings.temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)
            ids = torch.cat([ids, nxt.to(device)], dim=1)
        steered_logp = _answer_logp(model, ids, settings.positions)
    base_logp = _answer_logp(model, ids, settings.positions)
    answer = ids[:, len(prompt_ids) :].cpu()
    is_stop = torch.isin(answer, torch.tensor(sorted(stops), dtype=answer.dtype))
    stopped = is_stop.cumsum(1).bool()  # [samples, positions - 1]: a stop at or before
    live = torch.cat([torch.ones(settings.samples, 1, dtype=torch.bool), ~stopped], dim=1)
    delta = (steered_logp - base_logp).reshape(-1, steered_logp.shape[-1])
    return delta, live.reshape(-1)


def _answer_logp(model: torch.nn.Module, ids: torch.Tensor, positions: int) -> torch.Tensor:
    logits = model(input_ids=ids, logits_to_keep=positions).logits
    return F.log_softmax(logits.float(), dim=-1).cpu()


def special_ids(tokenizer: Any) -> list[int]:
    return sorted(set(tokenizer.all_special_ids or []))


def stop_ids(tokenizer: Any) -> set[int]:
    ids = {tokenizer.eos_token_id} | set(special_ids(tokenizer))
    return {i for i in ids if i is not None}


def write_token_set(
    model_dir: str | Path,
    prompts_path: str | Path,
    direction_path: str | Path,
    coefficient: float,
    settings: TokenSelection,
    seed: int,
    out: str | Path,
    summary: str | Path,
    trust_remote_code: bool = False,
) -> list[SafetyToken]:
    """Select the safety tokens of the model in `model_dir` steered by the saved direction, on
    the prompts of `prompts_path`; write them with their settings to `out` (JSON) and as a
    table to `summary` (Markdown, for the report)."""
    prompts = prompt_texts(prompts_path, settings.max_prompts)
    steering = Steering(RefusalDirection.load(direction_path), coefficient)
    model = runtime.current().load_model(model_dir, "teacher", trust_remote_code)
    tokenizer = load_tokenizer(model_dir, trust_remote_code)
    tokens = select_safety_tokens(model, tokenizer, prompts, steering, settings, seed)
    meta = {"coefficient": coefficient, "seed": seed, "prompts": len(prompts)}
    d = steering.direction
    meta |= {"layer": d.layer, "position": d.position, "direction_norm": float(d.vector.norm())}
    meta |= {"selection": settings.model_dump()}
    write_safety_tokens(out, tokens, meta)
    write_text(summary, token_table(tokens, meta))
    return tokens


def token_table(tokens: list[SafetyToken], meta: dict) -> str:
    """The direction and the token set as Markdown: what the SafeSteer teacher promotes."""
    lines = [
        "# SafeSteer: refusal direction and safety tokens",
        "",
        f"Direction: input of decoder layer {meta['layer']}, prompt position "
        f"{meta['position']}, norm {meta['direction_norm']:.3f}; steering coefficient "
        f"{meta['coefficient']}. Vote: {meta['prompts']} prompts, seed {meta['seed']}, "
        f"settings `{json.dumps(meta['selection'])}`.",
        "",
        "| rank | id | token | votes | mean log-prob shift |",
        "|---:|---:|---|---:|---:|",
    ]
    for rank, t in enumerate(tokens, 1):
        text = json.dumps(t.text, ensure_ascii=False)[1:-1].replace("|", "\\|")
        lines.append(f"| {rank} | {t.id} | `{text}` | {t.votes} | {t.mean_shift:+.3f} |")
    return "\n".join(lines) + "\n"


def write_safety_tokens(path: str | Path, tokens: list[SafetyToken], meta: dict) -> None:
    """JSON: the selection's settings and every token with its decoded text."""
    write_json(path, {**meta, "tokens": [t.__dict__ for t in tokens]})


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_safety_token_ids(path: str | Path) -> list[int]:
    data = read_json(path)
    rows = data.get("tokens") if isinstance(data, dict) else None
    if not rows or not all(isinstance(r, dict) and isinstance(r.get("id"), int) for r in rows):
        raise InputError(f"{path}: needs a non-empty 'tokens' list of rows with an integer 'id'")
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: a token id appears more than once")
    return ids
