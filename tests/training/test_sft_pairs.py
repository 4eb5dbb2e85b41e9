"""SFT (loss on response tokens only), external pairs, and the off-policy baseline's pairs.

Training and generation plumbing run on the tiny random Llama from conftest.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from opsa.baselines.external import external_pairs
from opsa.baselines.offpolicy import build_offpolicy_pairs
from opsa.data.sources import SourceSpec
from opsa.distill.sequences import pack
from opsa.errors import InputError
from opsa.generation.engine import SamplingParams
from opsa.generation.hf import HFGenerator
from opsa.judges.base import JudgeItem, Verdict
from opsa.models.load import load_tokenizer
from opsa.training.config import SFTConfig
from opsa.training.sft import encode_pairs, train_sft

from .conftest import C_H


def write_pairs(path, n=3):
    path.write_text(
        "".join(
            json.dumps({"id": str(i), "prompt": f"Question {i}?", "response": f"Answer {i}."})
            + "\n"
            for i in range(n)
        )
    )
    return path


def test_sft_loss_reads_only_the_response_and_stop_token(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    rows = [{"id": "1", "prompt": "Hi?", "response": "Hello there."}]
    ((p_ids, r_ids),) = encode_pairs(tok, rows, SFTConfig())
    assert tok.decode(p_ids).endswith("<|im_start|>assistant\n")
    assert "Hello" not in tok.decode(p_ids)
    assert r_ids[-1] == tok.eos_token_id
    assert tok.decode(r_ids[:-1]) == "Hello there."
    batch = pack([p_ids], [r_ids], tok.pad_token_id)
    assert batch.targets.tolist() == r_ids


def test_one_sft_step_changes_weights(tiny_model_dir, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl")
    out = tmp_path / "out"
    train_sft(
        tiny_model_dir,
        pairs,
        SFTConfig(batch_size=2, micro_batch_size=1, max_steps=2, lr=1e-3),
        out,
        tmp_path / "work",
    )
    rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    # a random model's NLL is about log(vocab size)
    assert 8.0 < rows[0]["loss"] < 13.0
    before, after = (load_file(d / "model.safetensors") for d in (tiny_model_dir, out))
    assert any(not torch.equal(before[k], after[k]) for k in after)


def test_external_pairs_from_a_local_file(tmp_path):
    src = tmp_path / "star.json"
    src.write_text(json.dumps([{"id": 7, "question": "Q?", "response": "A."}]))
    out = tmp_path / "pairs.jsonl"
    spec = SourceSpec(
        path=str(src), columns={"prompt": "question", "answer": "response", "id": "id"}
    )
    external_pairs(spec, out)
    assert json.loads(out.read_text()) == {"id": "star-7", "prompt": "Q?", "response": "A."}
    with pytest.raises(InputError, match="column 'prompt'"):
        external_pairs(SourceSpec(path=str(src), columns={"answer": "response"}), out)


def test_external_pairs_from_star1(shared_data, tmp_path):
    out = tmp_path / "pairs.jsonl"
    spec = SourceSpec(
        path=str(shared_data / "star1" / "STAR-1.json"),
        columns={"prompt": "question", "answer": "response"},
    )
    external_pairs(spec, out, n=3, seed=1)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3 and all(r["prompt"] and "<think>" in r["response"] for r in rows)
    again = tmp_path / "again.jsonl"
    external_pairs(spec, again, n=3, seed=1)
    assert again.read_text() == out.read_text()


class EveryOtherUnsafe:
    name = "stub"

    def __init__(self):
        self.items: list[JudgeItem] = []

    def judge(self, items):
        self.items += items
        return [Verdict(refused=None, unsafe=i % 2 == 0) for i in range(len(items))]


def test_offpolicy_pairs(tiny_model_dir, prompt_files, tmp_path, monkeypatch):
    """c_h reaches the harmful prompts' generation only; unsafe harmful responses are dropped;
    the pairs' prompts carry no context."""
    seen: list[str] = []
    original = HFGenerator.generate

    def spy(self, prompts, params):
        seen.extend(prompts)
        return original(self, prompts, params)

    monkeypatch.setattr(HFGenerator, "generate", spy)
    judge = EveryOtherUnsafe()
    out = tmp_path / "pairs.jsonl"
    build_offpolicy_pairs(
        tiny_model_dir,
        prompt_files["harmful"],
        prompt_files["benign"],
        prompt_files["contexts"],
        judge,
        SamplingParams(temperature=0.7, max_new_tokens=5),
        out,
    )
    assert sum(C_H in t for t in seen) == 2 and len(seen) == 4
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    harmful = [r for r in rows if r["label"] == "harmful"]
    assert len(judge.items) == 2 and len(harmful) == 1  # one of two judged unsafe
    assert harmful[0]["context_id"] == "c_h" and harmful[0]["id"] == judge.items[1].id
    assert all(C_H not in r["prompt"] for r in rows)
    assert {r["label"] for r in rows} == {"harmful", "benign"}


def test_offpolicy_pairs_without_the_filter_keep_unsafe_responses(
    tiny_model_dir, prompt_files, tmp_path
):
    """`training.offpolicy.filter: false`: the same responses, none dropped and none judged,
    to measure what the filter does."""
    args = (tiny_model_dir, prompt_files["harmful"], prompt_files["benign"])
    sampling = SamplingParams(temperature=0.7, max_new_tokens=5, seed=3)
    filtered, everything = tmp_path / "filtered.jsonl", tmp_path / "all.jsonl"
    build_offpolicy_pairs(*args, prompt_files["contexts"], EveryOtherUnsafe(), sampling, filtered)
    judge = EveryOtherUnsafe()
    build_offpolicy_pairs(
        *args, prompt_files["contexts"], judge, sampling, everything, filter_unsafe=False
    )
    kept = [json.loads(x) for x in filtered.read_text().splitlines()]
    rows = [json.loads(x) for x in everything.read_text().splitlines()]
    assert judge.items == [] and len(rows) == len(kept) + 1
    assert [r for r in rows if r["id"] in {k["id"] for k in kept}] == kept
