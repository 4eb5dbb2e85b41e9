"""Safety tokens: the vocabulary entries the steering promotes most at the start of answers.

SafeSteer's selection, on the steered trajectory: for each prompt, `samples` continuations of
`positions - 1` tokens are sampled (seeded) from the *steered* model; the steered and the base
model then score the same ids, and at each of the first `positions` answer positions every
sample votes for the `inner_top_k` entries with the largest log-probability shift
log p_steered - log p_base. The `count` entries with the most votes (ties: larger mean shift,
then smaller id) are the token set the loss is restricted to. Special tokens, and entries whose
mean steered probability is under `min_steered_prob`, never get votes; positions after a
sampled stop token are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator

from opsa.errors import InputError
from opsa.models import runtime
from opsa.models.load import load_tokenizer
from opsa.prompting.chat import render_user
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
    min_steered_prob: float = Field(
        1e-6, ge=0.0, lt=1.0, description="entries the steered model says less often never win"
    )

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
    steered_p: float  # mean probability under the steered model over the records
    base_p: float  # the same under the base model


class Ballot:
    """The voting records (one per sample and answer position) and the mean probabilities.

    Entries whose mean steered probability is under `min_steered_prob` never win (as in
    SafeSteer: a log-ratio is largest for entries lifted from nearly nothing, rare sub-words
    the teacher still almost never says)."""

    def __init__(self, banned: list[int]) -> None:
        self.deltas: list[torch.Tensor] = []  # [n, V] float32 each
        self.steered_p: torch.Tensor | float = 0.0
        self.base_p: torch.Tensor | float = 0.0
        self.banned = torch.tensor(sorted(banned), dtype=torch.long)

    def add(self, steered_logp: torch.Tensor, base_logp: torch.Tensor) -> None:
        self.deltas.append((steered_logp - base_logp).float())
        self.steered_p = self.steered_p + steered_logp.double().exp().sum(0)
        self.base_p = self.base_p + base_logp.double().exp().sum(0)

    def winners(self, settings: TokenSelection) -> list[tuple[int, int, float, float, float]]:
        """(id, votes, mean shift, mean steered p, mean base p) of the `settings.count` best:
        most votes, then the larger mean shift, then the smaller id."""
        delta = torch.cat(self.deltas)
        n = delta.shape[0]
        steered_p, base_p = self.steered_p / n, self.base_p / n
        allowed = steered_p >= settings.min_steered_prob
        allowed[self.banned] = False
        votable = torch.where(allowed, delta, -torch.inf)
        k = min(settings.inner_top_k, int(allowed.sum()))
        top = votable.topk(k, dim=-1).indices.reshape(-1) if k else torch.zeros(0).long()
        votes = torch.zeros(delta.shape[-1], dtype=torch.long).scatter_add_(
            0, top, torch.ones_like(top)
        )
        shift = delta.double().mean(0)
        order = sorted(
            votes.nonzero().flatten().tolist(), key=lambda i: (-int(votes[i]), -shift[i], i)
        )
        if len(order) < settings.count:
            raise InputError(
                f"only {len(order)} tokens got votes, count {settings.count} asked (lower "
                "min_steered_prob, or raise samples or max_prompts)"
            )
        return [
            (i, int(votes[i]), float(shift[i]), float(steered_p[i]), float(base_p[i]))
            for i in order[: settings.count]
        ]


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
    ballot = Ballot(special_ids(tokenizer))
    for i, prompt in enumerate(prompts):
        ids = tokenizer(render_user(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        generator = torch.Generator().manual_seed(seed * 1_000_003 + i)
        steered_logp, base_logp = answer_logps(
            model, ids, steering, settings, generator, stop_ids(tokenizer)
        )
        ballot.add(steered_logp, base_logp)
    return [
        SafetyToken(i, tokenizer.decode([i]), *scores) for i, *scores in ballot.winners(settings)
    ]


@torch.no_grad()
def answer_logps(
    model: torch.nn.Module,
    prompt_ids: list[int],
    steering: Steering,
    settings: TokenSelection,
    generator: torch.Generator,
    stops: set[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(steered, base) log-probabilities [records, V] at every sample's first `positions`
    answer positions, on continuations sampled from the steered model; positions after a
    sampled stop token are left out."""
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
    live = live.reshape(-1)
    vocab = steered_logp.shape[-1]
    return steered_logp.reshape(-1, vocab)[live], base_logp.reshape(-1, vocab)[live]


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
        "| rank | id | token | votes | mean log-prob shift | steered p | base p |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for rank, t in enumerate(tokens, 1):
        text = json.dumps(t.text, ensure_ascii=False)[1:-1].replace("|", "\\|")
        lines.append(
            f"| {rank} | {t.id} | `{text}` | {t.votes} | {t.mean_shift:+.3f} "
            f"| {t.steered_p:.2e} | {t.base_p:.2e} |"
        )
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
