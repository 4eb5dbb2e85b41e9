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
    """KL(p || q) along the last axis; entries where p is 0 contribute nothing."""
    p = p_logp.exp()
    return torch.where(p > 0, p * (p_logp - q_logp), torch.zeros_like(p)).sum(-1)


def forward_kl(teacher_logp: Tensor, student_logp: Tensor) -> Tensor:
    return kl(teacher_logp, student_logp)


def reverse_kl(teacher_logp: Tensor, student_logp: Tensor) -> Tensor:
    return kl(student_logp, teacher_logp)


def mixed_kl(teacher_logp: Tensor, student_logp: Tensor, forward_weight: float) -> Tensor:
    fwd = forward_kl(teacher_logp, student_logp)
    rev = reverse_kl(teacher_logp, student_logp)
    return forward_weight * fwd + (1.0 - forward_weight) * rev


def jsd(teacher_logp: Tensor, student_logp: Tensor, beta: float) -> Tensor:
    mix = torch.logsumexp(
        torch.stack([teacher_logp + math.log(beta), student_logp + math.log(1.0 - beta)]), dim=0
    )
    return beta * kl(teacher_logp, mix) + (1.0 - beta) * kl(student_logp, mix)


def with_tail(logp_support: Tensor) -> Tensor:
    """Append a tail bucket holding the probability outside the support (log 1 - sum p)."""
    mass = logp_support.exp().sum(-1, keepdim=True)
    tail = torch.log((1.0 - mass).clamp_min(1e-30))
    return torch.cat([logp_support, tail], dim=-1)
