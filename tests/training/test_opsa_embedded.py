"""OPSA on the embedded SmolLM2-135M-Instruct: teacher scoring of real rollouts, and one real
training step."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from transformers import PreTrainedTokenizerBase

from opsa.distill.sequences import pack
from opsa.generation.engine import SamplingParams
from opsa.models.load import load_model, load_tokenizer
from opsa.prompting.placement import Context
from opsa.prompting.sets import PromptItem
from opsa.training.chunked import loss_hidden
from opsa.training.config import OPSAConfig
from opsa.training.onpolicy import train_opsa
from opsa.training.rollout import encode_prompts, sample_completions

from .conftest import BENIGN, C_H, HARMFUL


def token_logp(model, prompts, completions, pad) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-prob of each completion token, argmax id at its position), scored from ids."""
    batch = pack(prompts, completions, pad)
    with torch.no_grad():
        logits = model.get_output_embeddings()(loss_hidden(model, batch)).float()
    logp = logits.log_softmax(-1).gather(-1, batch.targets[:, None]).squeeze(-1)
    return logp, logits.argmax(-1) == batch.targets


@pytest.fixture(scope="module")
def embedded(embedded_model_dir):
    return load_model(embedded_model_dir), load_tokenizer(embedded_model_dir)


def test_empty_context_teacher_equals_student_on_a_real_rollout(embedded, embedded_model_dir):
    """With no context (None, or an empty system context) the separately loaded teacher's
    per-token log-probabilities of the student's greedy rollout equal the student's; and the
    student's argmax at each scored position is the token it sampled there (ids aligned, not
    re-tokenised). With c_h the teacher disagrees."""
    student, tok = embedded
    teacher = load_model(embedded_model_dir)
    items = [
        PromptItem("h0", HARMFUL[0], "harmful"),
        PromptItem("b0", BENIGN[1], "benign"),
        PromptItem("b1", BENIGN[0] + " Answer in one word.", "benign"),
    ]
    empty = {"harmful": None, "benign": Context("empty", "", "system")}
    prompts = encode_prompts(tok, items, empty, 512)
    params = SamplingParams(temperature=0.0, max_new_tokens=16)
    completions = sample_completions(student, tok, [p.student_ids for p in prompts], params)
    s_logp, greedy = token_logp(
        student, [p.student_ids for p in prompts], completions, tok.pad_token_id
    )
    t_logp, _ = token_logp(teacher, [p.teacher_ids for p in prompts], completions, tok.pad_token_id)
    assert s_logp.numel() == sum(len(c) for c in completions) >= 12
    eos = tok.eos_token_id
    assert all(eos not in c[:-1] for c in completions)  # nothing after the stop token
    assert any(c[-1] == eos for c in completions)  # a stopped completion keeps its stop token
    assert (s_logp - t_logp).abs().max().item() < 1e-4
    assert greedy.float().mean().item() > 0.95

    with_context = encode_prompts(
        tok, items[:1], {"harmful": Context("c", C_H, "user_prefix")}, 512
    )
    assert with_context[0].teacher_ids != with_context[0].student_ids
    n = len(completions[0])
    t_ctx, _ = token_logp(teacher, [with_context[0].teacher_ids], completions[:1], tok.pad_token_id)
    assert (s_logp[:n] - t_ctx).abs().mean().item() > 1e-2


def test_one_real_opsa_step(embedded_model_dir, prompt_files, tmp_path, monkeypatch):
    """One step on the embedded model: weights change, the loss is finite, logs and per-token
    diagnostics are written, and no completion text is ever tokenised."""
    seen: list[str] = []
    original = PreTrainedTokenizerBase.__call__

    def spy(self, text=None, *args, **kwargs):
        seen.extend([text] if isinstance(text, str) else list(text or []))
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", spy)
    config = OPSAConfig(
        batch_size=2, micro_batch_size=2, max_new_tokens=8, top_k=64, max_steps=1, lr=1e-4
    )
    out = tmp_path / "out"
    train_opsa(
        embedded_model_dir,
        prompt_files["harmful"],
        prompt_files["benign"],
        prompt_files["contexts"],
        config,
        out,
        tmp_path / "work",
    )

    assert all(t.endswith("<|im_start|>assistant\n") for t in seen)  # prompts only
    row = json.loads((out / "train_log.jsonl").read_text().splitlines()[0])
    assert row["step"] == 1 and math.isfinite(row["loss"]) and row["loss"] >= 0
    assert row["tokens"] > 0 and row["peak_mem_mb"] > 0 and row["grad_norm"] > 0
    before = load_file(embedded_model_dir / "model.safetensors")
    after = load_file(out / "model.safetensors")
    changed = [k for k in after if not torch.equal(after[k], before[k])]
    assert len(changed) > len(after) // 2
    diag = json.loads((out / "token_diagnostics.json").read_text())
    assert diag["per_position"][0]["position"] == 0 and diag["top_tokens"]
