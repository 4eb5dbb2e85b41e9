"""Each divergence against a hand computation, with its direction named and checked."""

import math

import pytest
import torch

from opsa.distill import divergence as dv

P_T = [0.7, 0.2, 0.1]  # teacher
P_S = [0.4, 0.4, 0.2]  # student


def logp(p: list[float]) -> torch.Tensor:
    return torch.tensor(p, dtype=torch.float64).log()[None]


def hand_kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def test_forward_kl_is_teacher_given_first():
    got = dv.forward_kl(logp(P_T), logp(P_S)).item()
    assert got == pytest.approx(hand_kl(P_T, P_S), abs=1e-12)  # KL(teacher || student)


def test_reverse_kl_is_student_given_first():
    got = dv.reverse_kl(logp(P_T), logp(P_S)).item()
    assert got == pytest.approx(hand_kl(P_S, P_T), abs=1e-12)  # KL(student || teacher)


def test_directions_differ_on_an_asymmetric_example():
    fwd = dv.forward_kl(logp(P_T), logp(P_S)).item()
    rev = dv.reverse_kl(logp(P_T), logp(P_S)).item()
    assert abs(fwd - rev) > 1e-3


def test_mixed_weights_forward_then_reverse():
    got = dv.mixed_kl(logp(P_T), logp(P_S), forward_weight=0.3).item()
    want = 0.3 * hand_kl(P_T, P_S) + 0.7 * hand_kl(P_S, P_T)
    assert got == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("beta", [0.5, 0.2])
def test_jsd_against_hand(beta):
    m = [beta * t + (1 - beta) * s for t, s in zip(P_T, P_S, strict=True)]
    want = beta * hand_kl(P_T, m) + (1 - beta) * hand_kl(P_S, m)
    assert dv.jsd(logp(P_T), logp(P_S), beta).item() == pytest.approx(want, abs=1e-12)


def test_kl_ignores_zero_probability_entries():
    p = torch.tensor([[0.0, 1.0]], dtype=torch.float64).log()
    q = torch.tensor([[0.5, 0.5]], dtype=torch.float64).log()
    assert dv.kl(p, q).item() == pytest.approx(math.log(2), abs=1e-12)


def test_tail_bucket_holds_the_rest():
    logp = torch.tensor([[0.3, 0.15, 0.5, 0.05]], dtype=torch.float64).log()
    out = dv.with_tail(logp, torch.tensor([[2, 0]])).exp()
    assert out.tolist()[0] == pytest.approx([0.5, 0.3, 0.2])
    whole = dv.with_tail(logp, torch.tensor([[0, 1, 2, 3]])).exp()  # no tail left: 0
    assert whole.tolist()[0] == pytest.approx([0.3, 0.15, 0.5, 0.05, 0.0])
