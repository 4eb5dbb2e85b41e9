"""Per-token divergences between two next-token distributions given as log-probabilities, and
`DIVERGENCES`, the registry training (`OPSAConfig.divergence`) and the token-level analysis
(`analysis.token_divergence.divergence`) both choose from by name.

Directions are named, never implied by argument order alone:
- forward KL   = KL(teacher || student) = sum_v p_t(v) (log p_t(v) - log p_s(v))  (mode covering)
- reverse KL   = KL(student || teacher) = sum_v p_s(v) (log p_s(v) - log p_t(v))  (mode seeking)
- mixed(w)     = w * forward + (1 - w) * reverse
- jsd(beta)    = beta * KL(teacher || m) + (1 - beta) * KL(student || m),
                 m = beta * p_t + (1 - beta) * p_s   (beta = 0.5: the ordinary Jensen-Shannon)
- symmetric KL = forward + reverse (the analysis' default)
Every function takes (teacher_logp, student_logp) over the same support on the last axis and
returns one value per position.

A registered divergence's further parameters are its settings: each has a default (what the
analysis uses), and in training the config field `<name>_<parameter>` sets it (mixed's
`forward_weight` is `mixed_forward_weight`). torch is imported where it is used, so the
config can read the registry without it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field

if TYPE_CHECKING:
    from torch import Tensor

DivergenceFn = Callable[..., "Tensor"]
DIVERGENCES: dict[str, DivergenceFn] = {}


def register(name: str) -> Callable[[DivergenceFn], DivergenceFn]:
    """Decorator: add `fn(teacher_logp, student_logp, *settings)` to DIVERGENCES as `name`."""

    def add(fn: DivergenceFn) -> DivergenceFn:
        if name in DIVERGENCES:
            raise ValueError(f"divergence '{name}' is registered twice")
        if any(p.default is inspect.Parameter.empty for p in _settings(fn)):
            raise ValueError(f"divergence '{name}': every setting needs a default")
        DIVERGENCES[name] = fn
        return fn

    return add


def _settings(fn: DivergenceFn) -> list[inspect.Parameter]:
    return list(inspect.signature(fn).parameters.values())[2:]


def setting_fields(name: str) -> dict[str, str]:
    """A registered divergence's settings: parameter -> the training config field."""
    return {p.name: f"{name}_{p.name}" for p in _settings(DIVERGENCES[name])}


def bind(name: str, config: Any = None) -> Callable[[Tensor, Tensor], Tensor]:
    """Divergence `name` as (teacher_logp, student_logp) -> values: its settings from the
    fields of `config` (a training config), or their defaults without one."""
    fn = DIVERGENCES[name]
    if config is None:
        return fn
    values = {param: getattr(config, field) for param, field in setting_fields(name).items()}
    return partial(fn, **values) if values else fn


def kl(p_logp: Tensor, q_logp: Tensor) -> Tensor:
    """KL(p || q) along the last axis; entries where p is 0 contribute nothing, and nothing
    to the gradient either (a -inf log-probability is replaced before it can meet a 0 factor
    in the backward pass, where 0 * inf would be NaN)."""
    import torch

    p = p_logp.exp()
    live = p > 0
    diff = torch.where(live, p_logp, 0.0) - torch.where(live, q_logp, 0.0)
    return torch.where(live, p * diff, 0.0).sum(-1)


@register("forward_kl")
def forward_kl(teacher_logp: Tensor, student_logp: Tensor) -> Tensor:
    return kl(teacher_logp, student_logp)


@register("reverse_kl")
def reverse_kl(teacher_logp: Tensor, student_logp: Tensor) -> Tensor:
    return kl(student_logp, teacher_logp)


@register("mixed")
def mixed_kl(teacher_logp: Tensor, student_logp: Tensor, forward_weight: float = 0.5) -> Tensor:
    fwd = forward_kl(teacher_logp, student_logp)
    rev = reverse_kl(teacher_logp, student_logp)
    return forward_weight * fwd + (1.0 - forward_weight) * rev


@register("jsd")
def jsd(teacher_logp: Tensor, student_logp: Tensor, beta: float = 0.5) -> Tensor:
    import torch

    # where both are -inf the mixture is too; logsumexp's backward would be NaN there
    empty = torch.isneginf(teacher_logp) & torch.isneginf(student_logp)
    parts = torch.stack([teacher_logp + math.log(beta), student_logp + math.log(1.0 - beta)])
    mix = torch.logsumexp(torch.where(empty, 0.0, parts), dim=0)
    mix = torch.where(empty, -math.inf, mix)
    return beta * kl(teacher_logp, mix) + (1.0 - beta) * kl(student_logp, mix)


@register("symmetric_kl")
def symmetric_kl(teacher_logp: Tensor, student_logp: Tensor) -> Tensor:
    return kl(teacher_logp, student_logp) + kl(student_logp, teacher_logp)


def with_tail(logp: Tensor, support: Tensor) -> Tensor:
    """The support's log-probabilities (`logp` gathered at the ids `support` [n, k]) plus one
    bucket with the log of the mass outside it: a log-sum-exp over the complement, exact
    also when the support holds nearly all the mass (log(1 - sum p) in fp32 rounds to
    log(0) for a confident teacher). The ids in `support` must be distinct per row."""
    import torch

    outside = logp.scatter(-1, support, -math.inf)
    empty = torch.isneginf(outside).all(-1, keepdim=True)  # the support is the vocabulary
    tail = torch.logsumexp(torch.where(empty, 0.0, outside), dim=-1, keepdim=True)
    tail = torch.where(empty, -math.inf, tail)
    return torch.cat([logp.gather(-1, support), tail], dim=-1)


def _registered_divergence(name: str) -> str:
    if name not in DIVERGENCES:
        raise ValueError(f"'{name}' is not a divergence (one of {', '.join(DIVERGENCES)})")
    return name


def _divergence_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = list(DIVERGENCES)


# a name in opsa.distill.divergence.DIVERGENCES, looked up when validated (so a divergence
# registered after this module was imported is accepted too)
DivergenceName = Annotated[
    str, AfterValidator(_registered_divergence), Field(json_schema_extra=_divergence_enum)
]
