"""Per-token divergences between two next-token distributions given as log-probabilities.

Directions are named, never implied by argument order alone:
- forward KL = KL(teacher || student) = sum_v p_t(v) (log p_t(v) - log p_s(v))  (mode covering)
- reverse KL = KL(student || teacher) = sum_v p_s(v) (log p_s(v) - log p_t(v))  (mode seeking)
- mixed(w)   = w * forward + (1 - w) * reverse
- jsd(beta)  = beta * KL(teacher || m) + (1 - beta) * KL(student || m),
               m = beta * p_t + (1 - beta) * p_s   (beta = 0.5: the ordinary Jensen-Shannon)
Every function takes (teacher_logp, student_logp) over the same support on the last axis and
returns one value per position.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def kl(p_logp: Tensor, q_logp: Tensor) -> Tensor:
    """KL(p || q) along the last axis; entries where p is 0 contribute nothing, and nothing
    to the gradient either (a -inf log-probability is replaced before it can meet a 0 factor
    in the backward pass, where 0 * inf would be NaN)."""
    p = p_logp.exp()
    live = p > 0
    diff = torch.where(live, p_logp, 0.0) - torch.where(live, q_logp, 0.0)
    return torch.where(live, p * diff, 0.0).sum(-1)


def forward_kl(teacher_logp: Tensor, student_logp: Tensor) -> Tensor:
    return kl(teacher_logp, student_logp)


def reverse_kl(teacher_logp: Tensor, student_logp: Tensor) -> Tensor:
    return kl(student_logp, teacher_logp)


def mixed_kl(teacher_logp: Tensor, student_logp: Tensor, forward_weight: float) -> Tensor:
    fwd = forward_kl(teacher_logp, student_logp)
    rev = reverse_kl(teacher_logp, student_logp)
    return forward_weight * fwd + (1.0 - forward_weight) * rev


def jsd(teacher_logp: Tensor, student_logp: Tensor, beta: float) -> Tensor:
    # where both are -inf the mixture is too; logsumexp's backward would be NaN there
    empty = torch.isneginf(teacher_logp) & torch.isneginf(student_logp)
    parts = torch.stack([teacher_logp + math.log(beta), student_logp + math.log(1.0 - beta)])
    mix = torch.logsumexp(torch.where(empty, 0.0, parts), dim=0)
    mix = torch.where(empty, -math.inf, mix)
    return beta * kl(teacher_logp, mix) + (1.0 - beta) * kl(student_logp, mix)


def with_tail(logp: Tensor, support: Tensor) -> Tensor:
    """The support's log-probabilities (`logp` gathered at the ids `support` [n, k]) plus one
    bucket with the log of the mass outside it: a log-sum-exp over the complement, exact
    also when the support holds nearly all the mass (log(1 - sum p) in fp32 rounds to
    log(0) for a confident teacher). The ids in `support` must be distinct per row."""
    outside = logp.scatter(-1, support, -math.inf)
    empty = torch.isneginf(outside).all(-1, keepdim=True)  # the support is the vocabulary
    tail = torch.logsumexp(torch.where(empty, 0.0, outside), dim=-1, keepdim=True)
    tail = torch.where(empty, -math.inf, tail)
    return torch.cat([logp.gather(-1, support), tail], dim=-1)
