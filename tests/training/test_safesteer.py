"""SafeSteer's loss (reverse KL restricted to the safety tokens, not renormalised) and a short
run of its training on the tiny model with a direction and token set extracted from it."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from opsa.errors import InputError
from opsa.models.load import load_model, load_tokenizer
from opsa.steering.direction import DirectionSettings, extract_direction
from opsa.steering.hook import Steering
from opsa.steering.tokens import TokenSelection, select_safety_tokens
from opsa.training.config import OPSAConfig, SafeSteerConfig, parse_config
from opsa.training.safesteer import train_safesteer
from opsa.training.token_loss import DistillSpec, distill_terms
from tests.training.conftest import BENIGN, HARMFUL


def naive_restricted_reverse_kl(s_logits, t_logits, ids):
    """sum over the listed tokens of p_s(v) (log p_s(v) - log p_t(v)), full softmaxes, by loop."""
    out = []
    for s_row, t_row in zip(s_logits.double(), t_logits.double(), strict=True):
        s_lp, t_lp = s_row.log_softmax(-1), t_row.log_softmax(-1)
        out.append(sum(s_lp[v].exp() * (s_lp[v] - t_lp[v]) for v in ids))
    return torch.stack(out)


def test_restricted_reverse_kl_matches_the_naive_sum_and_is_not_renormalised():
    torch.manual_seed(0)
    s, t = torch.randn(5, 40, requires_grad=True), torch.randn(5, 40)
    ids = [3, 17, 8, 39]
    config = SafeSteerConfig(token_ids=ids)
    terms, value = distill_terms(DistillSpec.from_config(config), s, t, torch.zeros(5).long())
    want = naive_restricted_reverse_kl(s.detach(), t, ids)
    assert torch.allclose(value.double(), want, atol=1e-6)
    renormalised = distill_terms(
        DistillSpec.from_config(OPSAConfig(divergence="reverse_kl", token_ids=ids)), s, t, None
    )[1]
    assert not torch.allclose(value, renormalised, atol=1e-3)
    terms.sum().backward()
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_restricted_needs_token_ids():
    with pytest.raises(InputError, match="token_ids"):
        parse_config(SafeSteerConfig, {}, "training.safesteer")


def test_safesteer_trains_the_student_with_the_steered_teacher(
    tiny_model_dir, prompt_files, tmp_path
):
    """Coefficient 0: teacher = student at the start, the first step's loss is exactly 0;
    coefficient 8: the steered teacher gives a loss and the weights move; each prompt's 3
    rollouts all train."""
    model, tokenizer = load_model(tiny_model_dir), load_tokenizer(tiny_model_dir)
    direction = extract_direction(model, tokenizer, HARMFUL, BENIGN, DirectionSettings())
    d_path = tmp_path / "d.safetensors"
    direction.save(d_path, {"harmful": 2, "harmless": 2})
    selection = TokenSelection(count=8, positions=2, samples=2, inner_top_k=16)
    tokens = select_safety_tokens(
        model, tokenizer, BENIGN, Steering(direction, 8.0), selection, seed=0
    )
    losses = {}
    for coefficient in (0.0, 8.0):
        config = SafeSteerConfig(
            token_ids=[t.id for t in tokens],
            steering_coefficient=coefficient,
            batch_size=2,
            micro_batch_size=1,
            max_new_tokens=4,
            lr=1e-3,
            rollouts_per_prompt=3,
        )
        out = tmp_path / f"out-{coefficient}"
        work = tmp_path / f"work-{coefficient}"
        train_safesteer(tiny_model_dir, prompt_files["harmful"], d_path, config, out, work)
        rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
        assert len(rows) == 1  # one epoch over the two harmful prompts only, batch 2
        assert rows[0]["tokens"] > 2 * 4  # more than one 4-token rollout of each prompt
        losses[coefficient] = rows[0]["loss"]
    # unsteered, the teacher is the student (up to the rounding of reading the shared chat
    # header from its cache): no loss; steered, a real one
    assert abs(losses[0.0]) < 1e-9 and abs(losses[8.0]) > 1e-7
    trained = load_file(tmp_path / "out-8.0" / "model.safetensors")
    base = load_file(tiny_model_dir / "model.safetensors")
    assert not all(torch.equal(trained[k], base[k]) for k in trained)


def test_published_settings_are_safesteers_defaults_over_training_common():
    from opsa.training.methods import METHODS

    training = {"safesteer": {"train": {}, "coefficient": 1.0}}
    own = METHODS["safesteer"].settings(training)
    assert own["lr"] == 1e-5 and own["epochs"] == 1 and own["temperature"] == 1.0
    assert own["rollouts_per_prompt"] == 8
    training["safesteer"]["train"] = {"rollouts_per_prompt": 2, "lr": 1e-4}
    own = METHODS["safesteer"].settings(training)
    assert own["rollouts_per_prompt"] == 2 and own["lr"] == 1e-4 and own["epochs"] == 1


def test_each_prompt_is_rolled_out_n_times(tiny_model_dir):
    from opsa.generation.engine import SamplingParams
    from opsa.training.rollout import sample_completions

    model, tokenizer = load_model(tiny_model_dir), load_tokenizer(tiny_model_dir)
    ids = [tokenizer(p)["input_ids"] for p in (HARMFUL[0], BENIGN[0])]
    params = SamplingParams(temperature=1.0, max_new_tokens=6, seed=3, samples=3)
    out = sample_completions(model, tokenizer, ids, params)
    assert len(out) == 6
    assert len({tuple(c) for c in out[:3]}) > 1  # three samples of the first prompt, not one
