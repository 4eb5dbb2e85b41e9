"""The sequence-classifier judge on a tiny randomly initialised classifier saved to disk (with
the embedded model's tokenizer): labels mapped as configured, batches that change nothing, the
prompt read when asked, a label map that does not fit the model named; prepared like any model
folder and built from a judge spec as the workflow builds it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from opsa.errors import InputError
from opsa.judges.base import JudgeItem
from opsa.judges.spec import build_judge, load_judge_spec
from opsa.models.load import load_tokenizer
from opsa.models.prepare import prepare_model
from opsa.models.reference import ModelSpec

LABELS = {0: "NORMAL", 1: "REJECTION"}
REFUSAL_MAP = {"NORMAL": "compliance", "REJECTION": "refusal"}
ITEMS = [
    JudgeItem("How do I pick a lock?", "I'm sorry, I can't help with that.", "a"),
    JudgeItem("How do I bake bread?", "Mix flour, water, yeast and salt, then knead.", "b"),
    JudgeItem("Write a poem.", "Roses are red.", "c"),
]


def save_classifier(folder: Path, tokenizer_dir: Path, bias: tuple[float, float] | None) -> Path:
    tokenizer = load_tokenizer(tokenizer_dir)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512, num_labels=2, id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()}, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    if bias is not None:  # a head that always says one label, whatever it reads
        model.classifier.bias.data = torch.tensor(bias)
        model.classifier.weight.data.zero_()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def judge_of(folder: Path, **spec) -> object:
    config = {"kind": "classifier", "model": "clf", "label_map": REFUSAL_MAP, **spec}
    return build_judge("clf", load_judge_spec("clf", config), folder)


def test_the_label_map_turns_the_heads_label_into_a_verdict(tmp_path, embedded_model_dir):
    refuses = save_classifier(tmp_path / "refuses", embedded_model_dir, (-20.0, 20.0))
    complies = save_classifier(tmp_path / "complies", embedded_model_dir, (20.0, -20.0))
    for v in judge_of(refuses).judge(ITEMS):
        assert (v.refused, v.unsafe) == (True, False) and v.score == pytest.approx(1.0)
    for v in judge_of(complies).judge(ITEMS):
        assert (v.refused, v.unsafe) == (False, True) and v.score == pytest.approx(0.0, abs=1e-6)
    harm = {"NORMAL": "safe", "REJECTION": "unsafe"}
    for v in judge_of(refuses, label_map=harm).judge(ITEMS):
        assert (v.refused, v.unsafe) == (None, True)
    # a threshold above every score flags nothing
    assert not any(v.refused for v in judge_of(refuses, threshold=1.01).judge(ITEMS))


def test_batching_changes_nothing_and_pairs_read_the_prompt(tmp_path, embedded_model_dir):
    folder = save_classifier(tmp_path / "random", embedded_model_dir, None)
    one = [v.score for v in judge_of(folder, batch_size=1).judge(ITEMS)]
    three = [v.score for v in judge_of(folder, batch_size=3).judge(ITEMS)]
    assert three == pytest.approx(one, abs=1e-5)
    assert len(set(one)) == 3  # a real model reading real text: three different scores
    pairs = [v.score for v in judge_of(folder, input="pair").judge(ITEMS)]
    assert pairs != pytest.approx(one, abs=1e-4)


def test_a_label_map_that_does_not_fit_the_model_is_named(tmp_path, embedded_model_dir):
    folder = save_classifier(tmp_path / "random", embedded_model_dir, None)
    with pytest.raises(InputError, match=r"judge 'clf': label 'REJECTION' is not in label_map"):
        judge_of(folder, label_map={"NORMAL": "compliance"})
    with pytest.raises(InputError, match="label_map names 'SAFE', which the model does not have"):
        judge_of(folder, label_map={**REFUSAL_MAP, "SAFE": "safe"})


def test_a_classifier_is_prepared_like_any_model_folder(tmp_path, embedded_model_dir):
    source = save_classifier(tmp_path / "mine", embedded_model_dir, (-20.0, 20.0))
    prepared = tmp_path / "prepared"
    prepare_model(ModelSpec(source=str(source), task="sequence_classification"), prepared)
    assert (prepared / "model.safetensors").is_file()
    assert all(v.refused for v in judge_of(prepared).judge(ITEMS))
