"""Estimators (full, teacher top-k renormalised, tail bucket, token set, sampled token) against
hand computations, and the chunked loss against an unchunked one."""

import math

import pytest
import torch

from opsa.distill import divergence as dv
from opsa.training.chunked import chunked_terms
from opsa.training.config import OPSAConfig
from opsa.training.token_loss import (
    DistillSpec,
    distill_from_hidden,
    distill_terms,
    nll_terms,
    on_logits,
)

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
        spec(divergence="reverse_kl", estimator="sampled", temperature=1.0), s_logits, T_LOGITS, y
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
    fn = on_logits(lambda a, b, c: distill_terms(s, a, b, c))
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
        on_logits(lambda a, b, c: distill_terms(spec(estimator="full"), a, b, c)),
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


# --- against a naive float64 full-vocabulary reference (the audit's cases) ---------------------


def naive_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) in float64 from probabilities, over entries with p > 0."""
    live = p > 0
    return (p[live] * (p[live].log() - q[live].log())).sum()


def reference_tail(s_logits, t_logits, k: int, direction: str) -> torch.Tensor:
    """topk_tail from float64 probabilities: the teacher's top-k and 1 - (their sum)."""
    p_s, p_t = s_logits.double().softmax(-1), t_logits.double().softmax(-1)
    idx = p_t.topk(k).indices
    bucket = lambda p: torch.cat([p[idx], (1 - p[idx].sum())[None]])  # noqa: E731
    a, b = bucket(p_s), bucket(p_t)
    return naive_kl(a, b) if direction == "reverse_kl" else naive_kl(b, a)


Y0 = torch.tensor([0])


def confident_row(vocab: int = 49152) -> tuple[torch.Tensor, torch.Tensor]:
    """A teacher that puts all but ~1e-9 of its mass on one token (as a context-conditioned
    teacher does on a refusal opener), and a student that does not; fp32 logits as in training."""
    g = torch.Generator().manual_seed(0)
    t = torch.randn(vocab, generator=g) * 2
    t[7] += 40.0
    s = torch.randn(vocab, generator=g) * 2
    s[7] += 6.0
    return s[None], t[None]


@pytest.mark.parametrize("divergence", ["reverse_kl", "forward_kl", "mixed"])
def test_topk_tail_with_a_confident_teacher_matches_float64(divergence):
    """The old tail log(clamp(1 - sum p, 1e-30)) in fp32 rounded the teacher's tail to 1e-30:
    reverse KL several nats too high. In log space value and gradient match float64."""
    s32, t32 = confident_row()
    s = s32.clone().requires_grad_(True)
    got, _ = distill_terms(spec(divergence=divergence, estimator="topk_tail", top_k=64), s, t32, Y0)
    got.sum().backward()
    s64 = s32.double().requires_grad_(True)
    fwd = reference_tail(s64[0], t32[0], 64, "forward_kl")
    rev = reference_tail(s64[0], t32[0], 64, "reverse_kl")
    want = {"forward_kl": fwd, "reverse_kl": rev, "mixed": 0.5 * fwd + 0.5 * rev}[divergence]
    want.backward()
    assert got.item() == pytest.approx(want.item(), rel=1e-4, abs=1e-6)
    assert torch.allclose(s.grad.double(), s64.grad, atol=1e-6)


def test_sampled_expected_gradient_is_the_reverse_kl_gradient_at_the_sampling_temperature():
    """Exact expectation over y ~ p_s at T = 0.6 (every token weighted by its probability):
    the sampled estimator's mean gradient equals grad KL(p_s^T || p_t^T), computed naively in
    float64 over the whole vocabulary."""
    g = torch.Generator().manual_seed(1)
    s0, t0 = torch.randn(1, 40, generator=g) * 2, torch.randn(1, 40, generator=g) * 2
    temp = 0.6
    sp = spec(divergence="reverse_kl", estimator="sampled", temperature=temp)
    s = s0.double().expand(40, -1).clone().requires_grad_(True)
    terms, _ = distill_terms(sp, s, t0.double().expand(40, -1), torch.arange(40))
    weights = (s0.double() / temp).softmax(-1)[0]  # the probability of drawing each y
    (weights * terms).sum().backward()
    expected = s.grad.sum(0)
    ref = s0.double().clone().requires_grad_(True)
    naive_kl((ref / temp).softmax(-1)[0], (t0.double() / temp).softmax(-1)[0]).backward()
    assert torch.allclose(expected, ref.grad[0], atol=1e-10)


def naive_divergence(divergence: str, estimator: str, s_logits, t_logits, k: int):
    """The per-token divergence from float64 probabilities, written out directly."""
    p_s, p_t = s_logits.softmax(-1), t_logits.softmax(-1)
    if estimator != "full":
        idx = p_t.topk(k).indices
        if estimator == "topk":
            p_s, p_t = p_s[idx] / p_s[idx].sum(), p_t[idx] / p_t[idx].sum()
        else:
            p_s = torch.cat([p_s[idx], (1 - p_s[idx].sum())[None]])
            p_t = torch.cat([p_t[idx], (1 - p_t[idx].sum())[None]])
    fwd, rev = naive_kl(p_t, p_s), naive_kl(p_s, p_t)
    m = 0.5 * p_t + 0.5 * p_s
    return {
        "forward_kl": fwd,
        "reverse_kl": rev,
        "mixed": 0.5 * fwd + 0.5 * rev,
        "jsd": 0.5 * naive_kl(p_t, m) + 0.5 * naive_kl(p_s, m),
    }[divergence]


# which side may put -inf where the other has mass (the divergence stays finite)
ONE_SIDED = {"reverse_kl": "student", "forward_kl": "teacher", "jsd": "student", "mixed": None}


@pytest.mark.parametrize("divergence", list(ONE_SIDED))
@pytest.mark.parametrize("estimator", ["full", "topk", "topk_tail"])
def test_a_minus_inf_logit_gives_finite_values_and_gradients(divergence, estimator):
    """A masked token (-inf logit in student and teacher), and for the divergences that stay
    finite one -inf on one side only: value and gradient equal float64 over the remaining
    vocabulary, and the masked logits get a zero gradient (was NaN)."""
    g = torch.Generator().manual_seed(2)
    s0, t0 = torch.randn(1, 12, generator=g), torch.randn(1, 12, generator=g)
    s0[0, 3] = t0[0, 3] = -math.inf  # masked for both
    side = ONE_SIDED[divergence]
    if side is not None:
        (s0 if side == "student" else t0)[0, 5] = -math.inf
    s = s0.clone().requires_grad_(True)
    sp = spec(divergence=divergence, estimator=estimator, top_k=6)
    got, _ = distill_terms(sp, s, t0, Y0)
    got.sum().backward()
    assert torch.isfinite(got).all() and torch.isfinite(s.grad).all()
    assert s.grad[0, 3] == 0
    keep = [i for i in range(12) if i != 3]
    ref = s0.double()[0, keep].clone().requires_grad_(True)
    want = naive_divergence(divergence, estimator, ref, t0.double()[0, keep], k=6)
    want.backward()
    assert got.item() == pytest.approx(want.item(), rel=1e-5, abs=1e-7)
    grad = torch.where(torch.isneginf(ref), 0.0, ref.grad)
    assert torch.allclose(s.grad[0, keep].double(), grad, atol=1e-6)


def test_duplicate_token_ids_are_rejected_naming_the_id():
    with pytest.raises(ValueError, match="token_ids: id 9 appears more than once"):
        OPSAConfig(token_ids=[4, 9, 2, 9], estimator="full")


def previous_topk_path(sp, s_logits, t_logits):
    """The renormalised top-k as it was computed before the support-only head: full-vocabulary
    log_softmax of both models, the top-k of the teacher's log-probabilities, then a softmax of
    both models' logits gathered there."""
    import torch.nn.functional as F

    t_logp = F.log_softmax(t_logits.float(), dim=-1)
    F.log_softmax(s_logits.float(), dim=-1)  # computed and unused, as it was
    if sp.token_ids is not None:
        idx = torch.tensor(sp.token_ids).expand(t_logp.shape[0], -1)
    else:
        idx = t_logp.topk(sp.top_k, dim=-1).indices
    t_sup = F.log_softmax(t_logits.float().gather(-1, idx), dim=-1)
    s_sup = F.log_softmax(s_logits.float().gather(-1, idx), dim=-1)
    return sp.divergence(t_sup, s_sup)


def counting_head(hidden, vocab, bias):
    """A plain linear LM head that counts its (full-vocabulary) forwards."""
    head = torch.nn.Linear(hidden, vocab, bias=bias)
    head.full_calls = 0

    def count(module, args, output):
        module.full_calls += 1

    head.register_forward_hook(count)
    return head


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("setting", [{"top_k": 16}, {"estimator": "full", "token_ids": [3, 9, 41]}])
def test_support_only_head_matches_the_full_head_in_value_and_gradient(setting, bias):
    """The student's LM head on the support columns gives the loss and the gradients (hidden
    states, head weight and bias) of the full head to 1e-5, chunked or not, and never runs over
    the vocabulary."""
    torch.manual_seed(1)
    vocab, hidden, n = 300, 24, 37
    head_t = torch.nn.Linear(hidden, vocab, bias=False)
    h_t = torch.randn(n, hidden)
    y = torch.randint(0, vocab, (n,))
    sp = spec(**({"estimator": "topk", "divergence": "mixed"} | setting))
    grads = {}
    for path in ("previous", "support"):
        torch.manual_seed(2)
        head_s = counting_head(hidden, vocab, bias)
        h_s = torch.randn(n, hidden, requires_grad=True)
        if path == "previous":
            values = previous_topk_path(sp, head_s(h_s), head_t(h_t).detach())
            total = values.sum()
        else:
            loss = lambda head, h, t, yy: distill_from_hidden(sp, head, h, t, yy)  # noqa: E731
            total, values = chunked_terms(loss, head_s, h_s, y, 8, head_t, h_t)
            assert head_s.full_calls == 0
        total.backward()
        grads[path] = (total.detach(), values.detach(), h_s.grad, head_s.weight.grad)
        grads[path] += (head_s.bias.grad,) if bias else ()
    for before, after in zip(grads["previous"], grads["support"], strict=True):
        assert torch.allclose(before, after, atol=1e-5, rtol=1e-5), (before - after).abs().max()
    assert grads["support"][3].abs().sum() > 0  # the gradient reached the head


def test_a_support_covering_most_of_the_vocabulary_runs_the_whole_head():
    """Past FULL_HEAD_SHARE of the vocabulary the head runs whole (once), with the same values
    as the support-only path."""
    from opsa.training.token_loss import FULL_HEAD_SHARE, head_columns

    torch.manual_seed(3)
    head = counting_head(24, 100, bias=True)
    hidden = torch.randn(5, 24)
    few = torch.randint(0, 100, (5, 8))
    many = torch.randperm(100)[: int(FULL_HEAD_SHARE * 100) + 1].expand(5, -1)
    for idx, full_calls in ((few, 0), (many, 1)):
        head.full_calls = 0
        gathered = head_columns(head, hidden, idx)
        assert head.full_calls == full_calls
        full = torch.nn.functional.linear(hidden, head.weight, head.bias).gather(-1, idx)
        assert torch.allclose(gathered, full, atol=1e-6)


def test_support_only_head_on_the_embedded_model(tiny_model_dir):
    """The same equality on a transformers model's own LM head and hidden states."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ids = torch.arange(40, 80)[None]
    hidden = model(ids, output_hidden_states=True).hidden_states[-1][0]
    head = model.get_output_embeddings()
    t_logits = (head(hidden) + 0.3 * torch.randn(40, head.out_features)).detach()
    sp = spec(estimator="topk", top_k=64, divergence="mixed")
    before = previous_topk_path(sp, head(hidden), t_logits).sum()
    (g_before,) = torch.autograd.grad(before, head.weight, retain_graph=True)
    after, _ = distill_from_hidden(sp, head, hidden, t_logits, torch.zeros(40).long())
    (g_after,) = torch.autograd.grad(after.sum(), head.weight)
    assert after.sum().item() == pytest.approx(before.item(), rel=1e-5)
    assert torch.allclose(g_before, g_after, atol=1e-5)
