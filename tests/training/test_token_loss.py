"""Estimators (full, teacher top-k renormalised, tail bucket, token set, sampled token) against
hand computations, and the chunked loss against an unchunked one."""

import math

import pytest
import torch

from opsa.training import divergence as dv
from opsa.training.chunked import chunked_terms
from opsa.training.config import OPSAConfig
from opsa.training.token_loss import DistillSpec, distill_terms, nll_terms

T_LOGITS = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0]], dtype=torch.float64)
S_LOGITS = torch.tensor([[0.5, 1.5, 0.0, 0.3, -0.5]], dtype=torch.float64)


def softmax(xs: list[float]) -> list[float]:
    z = sum(math.exp(x) for x in xs)
    return [math.exp(x) / z for x in xs]


def hand_kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def spec(**kw) -> DistillSpec:
    return DistillSpec.from_config(OPSAConfig(**kw))


def test_full_vocab_forward_kl():
    p_t, p_s = softmax(T_LOGITS[0].tolist()), softmax(S_LOGITS[0].tolist())
    terms, _ = distill_terms(
        spec(divergence="forward_kl", estimator="full"), S_LOGITS, T_LOGITS, torch.tensor([0])
    )
    assert terms.item() == pytest.approx(hand_kl(p_t, p_s), abs=1e-6)


def test_topk_renormalises_both_over_the_teachers_top_k():
    # teacher's top-2 ids are 0 and 1; both distributions renormalised over {0, 1}
    p_t = softmax([2.0, 1.0])
    p_s = softmax([0.5, 1.5])
    terms, _ = distill_terms(
        spec(divergence="reverse_kl", estimator="topk", top_k=2),
        S_LOGITS,
        T_LOGITS,
        torch.tensor([0]),
    )
    assert terms.item() == pytest.approx(hand_kl(p_s, p_t), abs=1e-6)


def test_topk_tail_keeps_mass_outside_the_support_in_one_bucket():
    full_t, full_s = softmax(T_LOGITS[0].tolist()), softmax(S_LOGITS[0].tolist())
    p_t = [full_t[0], full_t[1], 1 - full_t[0] - full_t[1]]
    p_s = [full_s[0], full_s[1], 1 - full_s[0] - full_s[1]]
    terms, _ = distill_terms(
        spec(divergence="forward_kl", estimator="topk_tail", top_k=2),
        S_LOGITS,
        T_LOGITS,
        torch.tensor([0]),
    )
    assert terms.item() == pytest.approx(hand_kl(p_t, p_s), abs=1e-6)
    renorm, _ = distill_terms(
        spec(divergence="forward_kl", estimator="topk", top_k=2),
        S_LOGITS,
        T_LOGITS,
        torch.tensor([0]),
    )
    assert abs(terms.item() - renorm.item()) > 1e-3


def test_token_set_is_the_support_not_the_teachers_top_k():
    p_t, p_s = softmax([0.5, -1.0]), softmax([0.0, 0.3])  # ids 2 and 3
    terms, _ = distill_terms(
        spec(divergence="forward_kl", estimator="full", token_ids=[2, 3]),
        S_LOGITS,
        T_LOGITS,
        torch.tensor([0]),
    )
    assert terms.item() == pytest.approx(hand_kl(p_t, p_s), abs=1e-6)


def test_sampled_token_cost_and_gradient():
    s_logits = S_LOGITS.clone().requires_grad_(True)
    y = torch.tensor([1])
    terms, cost = distill_terms(
        spec(divergence="reverse_kl", estimator="sampled"), s_logits, T_LOGITS, y
    )
    s_y = math.log(softmax(S_LOGITS[0].tolist())[1])
    t_y = math.log(softmax(T_LOGITS[0].tolist())[1])
    assert cost.item() == pytest.approx(s_y - t_y, abs=1e-6)  # log p_s(y) - log p_t(y)
    terms.sum().backward()
    # gradient = cost * d log p_s(y) / d logits = cost * (onehot(y) - p_s)
    p_s = torch.tensor(softmax(S_LOGITS[0].tolist()), dtype=torch.float64)
    want = (s_y - t_y) * (torch.nn.functional.one_hot(y, 5)[0].double() - p_s)
    assert torch.allclose(s_logits.grad[0], want, atol=1e-6)


def test_gradient_reaches_the_student_only():
    s_logits = S_LOGITS.clone().requires_grad_(True)
    t_logits = T_LOGITS.clone().requires_grad_(True)
    terms, _ = distill_terms(spec(estimator="full"), s_logits, t_logits, torch.tensor([0]))
    terms.sum().backward()
    assert s_logits.grad is not None and s_logits.grad.abs().sum() > 0
    assert t_logits.grad is None or t_logits.grad.abs().sum() == 0


def test_mixed_is_the_paper_default():
    cfg = OPSAConfig()
    assert (cfg.divergence, cfg.mixed_forward_weight, cfg.estimator, cfg.top_k) == (
        "mixed",
        0.5,
        "topk",
        512,
    )
    got, _ = distill_terms(spec(estimator="full"), S_LOGITS, T_LOGITS, torch.tensor([0]))
    t, s = T_LOGITS.log_softmax(-1), S_LOGITS.log_softmax(-1)
    assert got.item() == pytest.approx(dv.mixed_kl(t, s, 0.5).item(), abs=1e-6)


@pytest.mark.parametrize("estimator", ["full", "topk", "sampled"])
def test_chunked_loss_equals_unchunked_in_value_and_gradient(estimator):
    torch.manual_seed(0)
    head_s, head_t = torch.nn.Linear(8, 30, bias=False), torch.nn.Linear(8, 30, bias=False)
    h_s, h_t = torch.randn(11, 8, requires_grad=True), torch.randn(11, 8)
    y = torch.randint(0, 30, (11,))
    divergence = "reverse_kl" if estimator == "sampled" else "mixed"
    s = spec(estimator=estimator, top_k=7, divergence=divergence)
    fn = lambda a, b, c: distill_terms(s, a, b, c)  # noqa: E731
    results = []
    for chunk in (3, 100):
        h_s.grad = None
        head_s.zero_grad()
        total, values = chunked_terms(fn, head_s, h_s, y, chunk, head_t, h_t)
        total.backward()
        results.append((total.item(), values.clone(), h_s.grad.clone(), head_s.weight.grad.clone()))
    (a, va, ga, wa), (b, vb, gb, wb) = results
    assert a == pytest.approx(b, rel=1e-5)
    assert torch.allclose(va, vb, atol=1e-6) and va.shape == (11,)
    assert torch.allclose(ga, gb, atol=1e-6) and torch.allclose(wa, wb, atol=1e-6)
    assert head_t.weight.grad is None


def test_nll_terms_are_cross_entropy():
    terms, _ = nll_terms(S_LOGITS, None, torch.tensor([3]))
    assert terms.item() == pytest.approx(-math.log(softmax(S_LOGITS[0].tolist())[3]), abs=1e-6)


class RecordingHead(torch.nn.Linear):
    def __init__(self):
        super().__init__(8, 50, bias=False)
        self.rows: list[int] = []

    def forward(self, x):
        self.rows.append(x.shape[0])
        return super().forward(x)


def test_no_logits_beyond_one_chunk_exist_in_forward_or_backward():
    """The LM heads only ever see chunk_size positions at once, also when the backward pass
    recomputes a chunk: full-vocab logits of the whole batch are never materialised."""
    head_s, head_t = RecordingHead(), RecordingHead()
    h_s = torch.randn(23, 8, requires_grad=True)
    total, _ = chunked_terms(
        lambda a, b, c: distill_terms(spec(estimator="full"), a, b, c),
        head_s,
        h_s,
        torch.randint(0, 50, (23,)),
        5,
        head_t,
        torch.randn(23, 8),
    )
    total.backward()
    assert max(head_s.rows) == 5 and max(head_t.rows) == 5
    assert sum(head_s.rows) == 2 * 23  # forward, then recomputed chunk by chunk in backward
