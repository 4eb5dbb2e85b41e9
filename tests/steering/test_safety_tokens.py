"""Safety-token selection on the embedded model steered along its refusal direction."""

from __future__ import annotations

import pytest

from opsa.errors import InputError
from opsa.steering.direction import DirectionSettings, extract_direction
from opsa.steering.hook import Steering
from opsa.steering.tokens import (
    TokenSelection,
    read_safety_token_ids,
    select_safety_tokens,
    special_ids,
    write_safety_tokens,
)
from tests.steering.conftest import HARMFUL, HARMLESS

SMALL = TokenSelection(count=12, positions=3, samples=2, inner_top_k=20, max_prompts=2)


@pytest.fixture(scope="module")
def steering(embedded):
    model, tokenizer = embedded
    d = extract_direction(model, tokenizer, HARMFUL, HARMLESS, DirectionSettings(layer=12))
    return Steering(d, 4.0)


def test_selection_returns_the_count_and_is_deterministic_for_a_seed(embedded, steering):
    model, tokenizer = embedded
    first = select_safety_tokens(model, tokenizer, HARMLESS, steering, SMALL, seed=3)
    again = select_safety_tokens(model, tokenizer, HARMLESS, steering, SMALL, seed=3)
    assert len(first) == SMALL.count
    assert first == again
    ids = [t.id for t in first]
    assert len(set(ids)) == len(ids) and not set(ids) & set(special_ids(tokenizer))
    votes = [t.votes for t in first]
    assert votes == sorted(votes, reverse=True) and votes[0] > 1
    assert all(t.mean_shift > 0 for t in first[:3])  # the winners are promoted by steering
    assert all(t.steered_p >= SMALL.min_steered_prob for t in first)


def test_rare_entries_never_win(embedded, steering):
    """A high probability floor leaves too few entries to vote for: one line says so."""
    model, tokenizer = embedded
    strict = SMALL.model_copy(update={"min_steered_prob": 0.2})
    with pytest.raises(InputError, match="tokens got votes, count 12"):
        select_safety_tokens(model, tokenizer, HARMLESS, steering, strict, seed=3)


def test_token_file_round_trip_and_bad_files(embedded, steering, tmp_path):
    model, tokenizer = embedded
    tokens = select_safety_tokens(model, tokenizer, HARMLESS, steering, SMALL, seed=0)
    path = tmp_path / "tokens.json"
    write_safety_tokens(path, tokens, {"seed": 0})
    assert read_safety_token_ids(path) == [t.id for t in tokens]
    (tmp_path / "empty.json").write_text('{"tokens": []}')
    with pytest.raises(InputError, match="empty.json"):
        read_safety_token_ids(tmp_path / "empty.json")


def test_settings_need_inner_top_k_of_at_least_count():
    with pytest.raises(ValueError, match="inner_top_k"):
        TokenSelection(count=50, inner_top_k=10)
