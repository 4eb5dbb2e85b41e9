"""Per-token loss terms: OPSA's estimators and SFT's negative log-likelihood.

A token-loss function maps (student_logits [n, V], teacher_logits [n, V] | None, targets [n])
to (terms [n], divergence [n]): `terms` carry the gradient (summed, then divided by the step's
token count), `divergence` is the detached per-token value for logs and diagnostics. A head
loss (what the chunked loss calls) takes the student's LM head and hidden states [n, H] in
place of its logits, so an estimator that reads a few columns computes only those:
`distill_from_hidden` does for the renormalised top-k (a fixed token set likewise), whose
value and gradient depend on the student's logits at the support ids alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from opsa.distill import divergence as dv
from opsa.training.config import OPSAConfig

Tensor = torch.Tensor
TokenLoss = Callable[[Tensor, Tensor | None, Tensor], tuple[Tensor, Tensor]]
HeadLoss = Callable[[torch.nn.Module, Tensor, Tensor | None, Tensor], tuple[Tensor, Tensor]]


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

    @property
    def renormalised(self) -> bool:
        """Both distributions renormalised over a support (the teacher's top-k, or the fixed
        token set): the loss reads the student's logits at the support ids only."""
        return self.estimator == "topk" or (self.estimator == "full" and self.token_ids is not None)


def distill_terms(
    spec: DistillSpec, student_logits: Tensor, teacher_logits: Tensor | None, targets: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-token distillation loss terms and the detached divergence they estimate."""
    assert teacher_logits is not None, "distillation needs teacher logits"
    teacher_logits = teacher_logits.detach()  # the teacher is a fixed target
    if spec.renormalised:
        return renormalised_terms(spec, lambda idx: student_logits.gather(-1, idx), teacher_logits)
    if spec.estimator == "sampled":
        t = spec.temperature
        s_logp = F.log_softmax(student_logits.float() / t, dim=-1)
        t_logp = F.log_softmax(teacher_logits.float() / t, dim=-1)
        return sampled_terms(s_logp, t_logp, targets)
    s_logp = F.log_softmax(student_logits.float(), dim=-1)
    t_logp = F.log_softmax(teacher_logits.float(), dim=-1)
    t_sup, s_sup = support_logp(spec, s_logp, t_logp)
    value = spec.divergence(t_sup, s_sup)
    return value, value.detach()


FULL_HEAD_SHARE = 0.5  # the support-only head's limit: past it, the whole head runs


def distill_from_hidden(
    spec: DistillSpec,
    student_head: torch.nn.Module,
    student_hidden: Tensor,
    teacher_logits: Tensor | None,
    targets: Tensor,
) -> tuple[Tensor, Tensor]:
    """`distill_terms` from the student's hidden states: a renormalised support runs the
    student's LM head on the columns some position's support holds, never the vocabulary."""
    assert teacher_logits is not None, "distillation needs teacher logits"
    if spec.renormalised and _plain_linear(student_head):
        columns = partial(head_columns, student_head, student_hidden)
        return renormalised_terms(spec, columns, teacher_logits.detach())
    return distill_terms(spec, student_head(student_hidden), teacher_logits, targets)


def renormalised_terms(
    spec: DistillSpec, student_columns: Callable[[Tensor], Tensor], teacher_logits: Tensor
) -> tuple[Tensor, Tensor]:
    """The divergence over the support, both distributions renormalised over it: a softmax of
    the logits gathered there (the support's ids are the top-k of the raw logits, the same as
    of the log-probabilities; no full-vocabulary log_softmax is needed)."""
    t_logits = teacher_logits.float()
    idx = _support_ids(spec, t_logits)
    t_sup = F.log_softmax(t_logits.gather(-1, idx), dim=-1)
    s_sup = F.log_softmax(student_columns(idx).float(), dim=-1)
    value = spec.divergence(t_sup, s_sup)
    return value, value.detach()


def head_columns(head: torch.nn.Linear, hidden: Tensor, idx: Tensor) -> Tensor:
    """`head(hidden).gather(-1, idx)` without the other columns: one matmul against the head's
    rows for the ids that occur anywhere in `idx` [n, k]. Where those ids cover more than
    `FULL_HEAD_SHARE` of the vocabulary, the whole head is cheaper than gathering its rows."""
    cols, where = torch.unique(idx, return_inverse=True)
    if cols.numel() > FULL_HEAD_SHARE * head.out_features:
        return head(hidden).gather(-1, idx)
    bias = head.bias.index_select(0, cols) if head.bias is not None else None
    return F.linear(hidden, head.weight.index_select(0, cols), bias).gather(-1, where)


def _plain_linear(head: torch.nn.Module) -> bool:
    """An LM head whose weight can be indexed (not a ZeRO-3 partition, which only its forward
    gathers)."""
    weight = getattr(head, "weight", None)
    return type(head) is torch.nn.Linear and weight is not None and not hasattr(weight, "ds_id")


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


def support_logp(spec: DistillSpec, s_logp: Tensor, t_logp: Tensor) -> tuple[Tensor, Tensor]:
    """(teacher, student) log-probabilities over the support of an estimator that keeps the
    full distributions' values (the renormalised ones go through `renormalised_terms`).

    full: the whole vocabulary. topk_tail: the teacher's top-k (or the fixed token set) entries
    un-normalised plus one bucket holding the rest of each distribution's mass. restricted: the
    fixed token set's entries of the full distributions, un-normalised and without the rest
    (SafeSteer: the divergence is a partial sum over those tokens; its authors found
    renormalising over them makes the student over-refuse).
    """
    if spec.estimator == "full":
        return t_logp, s_logp
    idx = _support_ids(spec, t_logp)
    if spec.estimator == "restricted":
        return t_logp.gather(-1, idx), s_logp.gather(-1, idx)
    return dv.with_tail(t_logp, idx), dv.with_tail(s_logp, idx)


def _support_ids(spec: DistillSpec, teacher: Tensor) -> Tensor:
    """The fixed token set, or the top-k of the teacher's logits (or log-probabilities)."""
    if spec.token_ids is not None:
        ids = torch.tensor(spec.token_ids, device=teacher.device)
        return ids.expand(teacher.shape[0], -1)
    return teacher.topk(min(spec.top_k, teacher.shape[-1]), dim=-1).indices


def on_logits(token_loss: TokenLoss) -> HeadLoss:
    """A token loss over the student's full logits, as a head loss."""

    def head_loss(
        head: torch.nn.Module, hidden: Tensor, teacher_logits: Tensor | None, targets: Tensor
    ) -> tuple[Tensor, Tensor]:
        return token_loss(head(hidden), teacher_logits, targets)

    return head_loss


def nll_terms(
    student_logits: Tensor, teacher_logits: Tensor | None, targets: Tensor
) -> tuple[Tensor, Tensor]:
    """SFT: the negative log-likelihood of each target token."""
    nll = F.cross_entropy(student_logits.float(), targets, reduction="none")
    return nll, nll.detach()
