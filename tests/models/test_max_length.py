"""A model's context length, and prompts that do not fit in it."""

from __future__ import annotations

import json

import pytest

from opsa.errors import InputError
from opsa.models.load import load_tokenizer
from opsa.models.max_length import check_prompt_lengths, max_model_length


def test_context_length_from_config_or_its_text_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"n_positions": 1024}}))
    assert max_model_length(tmp_path) == 1024
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 4096}))
    assert max_model_length(tmp_path) == 4096
    (tmp_path / "config.json").write_text("{}")
    assert max_model_length(tmp_path) is None


def test_prompt_plus_new_tokens_must_fit(embedded_model_dir):
    tokenizer = load_tokenizer(embedded_model_dir)  # max_position_embeddings 8192
    texts = ["Hi.", "word " * 4000]
    check_prompt_lengths(embedded_model_dir, tokenizer, ["a", "b"], texts, 100, "p.jsonl")
    with pytest.raises(InputError, match=r"p.jsonl: prompt id 'b' has \d+ tokens; .* 8192"):
        check_prompt_lengths(embedded_model_dir, tokenizer, ["a", "b"], texts, 5000, "p.jsonl")
