"""Per-token loss terms from logits: OPSA's estimators and SFT's negative log-likelihood.

A token-loss function maps (student_logits [n, V], teacher_logits [n, V] | None, targets [n])
to (terms [n], divergence [n]): `terms` carry the gradient (summed, then divided by the step's
token count), `divergence` is the detached per-token value for logs and diagnostics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from opsa.distill import divergence as dv
from opsa.training.config import OPSAConfig

Tensor = torch.Tensor
TokenLoss = Callable[[Tensor, Tensor | None, Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class DistillSpec:
    """Which divergence, over which support, estimated how."""

    divergence: Callable[[Tensor, Tensor], Tensor]
    estimator: str
    top_k: int
    token_ids: tuple[int, ...] | None
    temperature: float = 1.0  # the rollouts' sampling temperature: `sampled` scores at it

    @classmethod
    def from_config(cls, config: OPSAConfig) -> DistillSpec:
        fn = dv.bind(config.divergence, config)
        ids = tuple(config.token_ids) if config.token_ids is not None else None
        return cls(fn, config.estimator, config.top_k, ids, config.temperature)


def distill_terms(
    spec: DistillSpec, student_logits: Tensor, teacher_logits: Tensor | None, targets: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-token distillation loss terms and the detached divergence they estimate."""
    assert teacher_logits is not None, "distillation needs teacher logits"
    teacher_logits = teacher_logits.detach()  # the teacher is a fixed target
    if spec.estimator == "sampled":
        t = spec.temperature
        s_logp = F.log_softmax(student_logits.float() / t, dim=-1)
        t_logp = F.log_softmax(teacher_logits.float() / t, dim=-1)
        return sampled_terms(s_logp, t_logp, targets)
    s_logp = F.log_softmax(student_logits.float(), dim=-1)
    t_logp = F.log_softmax(teacher_logits.float(), dim=-1)
    t_sup, s_sup = support_logp(spec, s_logp, t_logp, student_logits, teacher_logits)
    value = spec.divergence(t_sup, s_sup)
    return value, value.detach()


def sampled_terms(s_logp: Tensor, t_logp: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Reverse KL from the sampled token only: log p_s(y) - log p_t(y) as a fixed per-token
    cost weighting the score function, so the gradient is E[(log p_s - log p_t) grad log p_s].

    The expectation is over the distribution y was drawn from, so both log-probabilities come
    from logits / T at the rollouts' temperature T (`distill_terms` does this): the gradient is
    then unbiased for grad KL(p_s^T || p_t^T). Scored at T = 1 after sampling at T = 0.6 the
    expected gradient was off from it by about half."""
    s_y = s_logp.gather(-1, targets[:, None]).squeeze(-1)
    t_y = t_logp.gather(-1, targets[:, None]).squeeze(-1)
    cost = (s_y - t_y).detach()
    return cost * s_y, cost


def support_logp(
    spec: DistillSpec, s_logp: Tensor, t_logp: Tensor, s_logits: Tensor, t_logits: Tensor
) -> tuple[Tensor, Tensor]:
    """(teacher, student) log-probabilities over the estimator's support.

    full: the whole vocabulary. topk: the teacher's top-k (or the fixed token set), both
    distributions renormalised over it. topk_tail: the same entries un-normalised plus one
    bucket holding the rest of each distribution's mass. restricted: the fixed token set's
    entries of the full distributions, un-normalised and without the rest (SafeSteer: the
    divergence is a partial sum over those tokens; its authors found renormalising over them
    makes the student over-refuse).
    """
    if spec.estimator == "full" and spec.token_ids is None:
        return t_logp, s_logp
    idx = _support_ids(spec, t_logp)
    if spec.estimator == "restricted":
        return t_logp.gather(-1, idx), s_logp.gather(-1, idx)
    if spec.estimator == "topk_tail":
        return dv.with_tail(t_logp, idx), dv.with_tail(s_logp, idx)
    t_sup = F.log_softmax(t_logits.float().gather(-1, idx), dim=-1)
    s_sup = F.log_softmax(s_logits.float().gather(-1, idx), dim=-1)
    return t_sup, s_sup


def _support_ids(spec: DistillSpec, t_logp: Tensor) -> Tensor:
    if spec.token_ids is not None:
        ids = torch.tensor(spec.token_ids, device=t_logp.device)
        return ids.expand(t_logp.shape[0], -1)
    return t_logp.topk(min(spec.top_k, t_logp.shape[-1]), dim=-1).indices


def nll_terms(
    student_logits: Tensor, teacher_logits: Tensor | None, targets: Tensor
) -> tuple[Tensor, Tensor]:
    """SFT: the negative log-likelihood of each target token."""
    nll = F.cross_entropy(student_logits.float(), targets, reduction="none")
    return nll, nll.detach()
