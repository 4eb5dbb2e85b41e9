"""The loss from hidden states in chunks of positions, never from whole-batch logits.

The decoder runs once; only the hidden states at the loss positions are kept ([N, H]). Each
chunk of positions goes through the teacher's LM head (when given) and a head loss, which applies
the student's LM head where it needs it (`opsa.training.token_loss`), under activation
checkpointing, so at most one chunk's [chunk, V] logits per model exist at a time, in the
forward and in the backward pass. When all positions fit in one chunk
there is nothing to free between chunks, so the chunk is not recomputed in the backward pass.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from opsa.distill.sequences import PackedBatch
from opsa.errors import InputError
from opsa.training.token_loss import HeadLoss

Tensor = torch.Tensor


def loss_hidden(model: torch.nn.Module, batch: PackedBatch) -> Tensor:
    """Final (normed) hidden states at the batch's loss positions: [N, H].

    The forward goes through `model` itself (so a DDP/DeepSpeed wrapper sees it) and asks the
    LM head for the last position only; the chunked loss applies the head where it is needed.
    """
    config = getattr(model, "module", model).config
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        raise InputError(
            f"{config.model_type}: logits are rescaled after the LM head; the chunked loss "
            "does not support this architecture"
        )
    device = next(model.parameters()).device
    out = model(
        input_ids=batch.input_ids.to(device),
        attention_mask=batch.attention_mask.to(device),
        output_hidden_states=True,
        logits_to_keep=1,
        use_cache=False,
    )
    return out.hidden_states[-1][batch.rows.to(device), batch.positions.to(device)]


def chunked_terms(
    head_loss: HeadLoss,
    student_head: torch.nn.Module,
    student_hidden: Tensor,
    targets: Tensor,
    chunk_size: int,
    teacher_head: torch.nn.Module | None = None,
    teacher_hidden: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """(sum of the loss terms, detached per-token divergence [N]) over all positions."""

    def one_chunk(h_s: Tensor, y: Tensor, h_t: Tensor | None) -> tuple[Tensor, Tensor]:
        t_logits = None
        if teacher_head is not None and h_t is not None:
            with torch.no_grad():
                t_logits = teacher_head(h_t)
        terms, value = head_loss(student_head, h_s, t_logits, y)
        return terms.sum(), value

    targets = targets.to(student_hidden.device)
    total = student_hidden.new_zeros((), dtype=torch.float32)
    values = []
    for start in range(0, targets.numel(), chunk_size):
        part = slice(start, start + chunk_size)
        h_t = teacher_hidden[part] if teacher_hidden is not None else None
        if torch.is_grad_enabled() and targets.numel() > chunk_size:
            s, v = checkpoint(
                one_chunk, student_hidden[part], targets[part], h_t, use_reentrant=False
            )
        else:
            s, v = one_chunk(student_hidden[part], targets[part], h_t)
        total = total + s
        values.append(v.detach())
    value = torch.cat(values) if values else targets.new_zeros(0, dtype=torch.float32)
    return total, value
