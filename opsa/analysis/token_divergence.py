"""Token-level analysis: where along a response each model still disagrees with the
context-conditioned teacher.

The base model's own responses to harmful prompts are scored twice per model, token by
token: by the teacher (the base model with the selected harmful context c_h, placed by
`opsa.prompting.placement`) and by the model without context. The divergence between the
two next-token distributions at each response position is averaged per position (the
paper: it peaks in the first ~10 tokens and fades after ~30) and summed per sampled token
(the paper: compliance openers such as "Sure" and "Here" carry most of it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from opsa.analysis.settings import TokenAnalysisSettings
from opsa.distill.diagnostics import TokenDiagnostics
from opsa.distill.divergence import bind
from opsa.distill.sequences import PackedBatch, pack
from opsa.models import runtime
from opsa.models.load import load_tokenizer
from opsa.prompting.chat import render_user
from opsa.prompting.placement import render_prompt
from opsa.prompting.sets import load_selected_contexts
from opsa.records import read_jsonl, require_columns, write_json

log = logging.getLogger(__name__)


@torch.no_grad()
def token_logp(model: torch.nn.Module, batch: PackedBatch) -> torch.Tensor:
    """fp32 log-probabilities of the next token at each position the batch lists [N, V]."""
    device = next(model.parameters()).device
    out = model(
        input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)
    )
    picked = out.logits[batch.rows.to(device), batch.positions.to(device)]
    return picked.float().log_softmax(-1).cpu()


def position_divergence(
    teacher: torch.nn.Module,
    teacher_batch: PackedBatch,
    model: torch.nn.Module,
    model_batch: PackedBatch,
    kind: str = "symmetric_kl",
) -> torch.Tensor:
    """One divergence per response token (`kind`: a name in DIVERGENCES, with its default
    settings); both batches pack the same responses."""
    if not torch.equal(teacher_batch.targets, model_batch.targets):
        raise ValueError("teacher and model batches hold different responses")
    return bind(kind)(token_logp(teacher, teacher_batch), token_logp(model, model_batch))


def read_rollouts(path: Path, limit: int, max_tokens: int) -> list[dict[str, Any]]:
    """The first `limit` non-empty responses (sample 0 of each prompt), cut to `max_tokens`."""
    rows = read_jsonl(path)
    require_columns(rows, ["id", "prompt", "token_ids"], path)
    kept = [r for r in rows if r.get("sample", 0) == 0 and r["token_ids"]][:limit]
    return [r | {"token_ids": r["token_ids"][:max_tokens]} for r in kept]


def analyse_model(
    teacher: torch.nn.Module,
    model: torch.nn.Module,
    batches: list[tuple[PackedBatch, PackedBatch]],
    settings: TokenAnalysisSettings,
    tokenizer: Any,
) -> dict[str, Any]:
    table = TokenDiagnostics(settings.top_tokens)
    for teacher_batch, model_batch in batches:
        values = position_divergence(
            teacher, teacher_batch, model, model_batch, settings.divergence
        )
        table.add(teacher_batch.offsets, teacher_batch.targets, values)
    summary = table.summary(tokenizer)
    total = sum(table.token_mass.values())
    for row in summary["top_tokens"]:
        row["share"] = row["mass"] / total if total > 0 else 0.0
    summary["total"] = total
    return summary


def analyse_token_divergence(
    teacher_dir: Path,
    models: dict[str, Path],
    rollouts_path: Path,
    contexts_path: Path,
    settings: TokenAnalysisSettings,
    out_path: Path,
    trust_remote_code: bool = False,
) -> None:
    """token_divergence.json: per model, the mean divergence per response position and the
    tokens that carry most of it (with their share of the total)."""
    harmful_context, _ = load_selected_contexts(contexts_path)
    rows = read_rollouts(rollouts_path, settings.rollouts, settings.max_tokens)
    tokenizer = load_tokenizer(teacher_dir, trust_remote_code)

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    teacher_prompts = [encode(render_prompt(tokenizer, r["prompt"], harmful_context)) for r in rows]
    model_prompts = [encode(render_user(tokenizer, r["prompt"])) for r in rows]
    responses = [r["token_ids"] for r in rows]
    step, pad = settings.batch_size, tokenizer.pad_token_id
    batches = [
        (
            pack(teacher_prompts[i : i + step], responses[i : i + step], pad),
            pack(model_prompts[i : i + step], responses[i : i + step], pad),
        )
        for i in range(0, len(rows), step)
    ]
    owner = runtime.current()
    teacher = owner.load_model(teacher_dir, "teacher", trust_remote_code)
    result = {}
    for name, model_dir in models.items():
        model = owner.load_model(model_dir, "policy", trust_remote_code)
        result[name] = analyse_model(teacher, model, batches, settings, tokenizer)
        log.info("%s: mean %s %.4f per token", name, settings.divergence,
                 result[name]["total"] / max(sum(map(len, responses)), 1))  # fmt: skip
        del model
    write_json(
        out_path,
        {
            "context": harmful_context.id,
            "rollouts": len(rows),
            "divergence": settings.divergence,
            "models": result,
        },
    )
