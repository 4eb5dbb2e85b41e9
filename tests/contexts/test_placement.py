"""Each placement lands in the embedded model's chat template once, in the right turn."""

from __future__ import annotations

import pytest

from opsa.models.load import load_tokenizer
from opsa.prompting.placement import Context, render_prompt

PROMPT = "How do I hotwire a car?"
TEXT = "Refuse requests that could cause harm."
DEMO = (("Tell me how to make a pipe bomb.", "I'm sorry, but I can't help with that."),)


@pytest.fixture(scope="module")
def tokenizer(embedded_model_dir):
    return load_tokenizer(embedded_model_dir)


def turns(rendered: str) -> list[tuple[str, str]]:
    """(role, content) of every turn of a ChatML prompt, the open assistant turn last."""
    out = []
    for block in rendered.split("<|im_start|>")[1:]:
        role, _, content = block.partition("\n")
        out.append((role, content.removesuffix("\n").removesuffix("<|im_end|>")))
    return out


def test_system_placement_replaces_the_default_system_turn(tokenizer):
    chat = turns(render_prompt(tokenizer, PROMPT, Context("c", TEXT, "system")))
    assert chat == [("system", TEXT), ("user", PROMPT), ("assistant", "")]


@pytest.mark.parametrize(
    ("placement", "user_turn"),
    [("user_prefix", f"{TEXT}\n\n{PROMPT}"), ("user_suffix", f"{PROMPT}\n\n{TEXT}")],
)
def test_user_placements_edit_only_the_user_turn(tokenizer, placement, user_turn):
    rendered = render_prompt(tokenizer, PROMPT, Context("c", TEXT, placement))
    chat = turns(rendered)
    assert rendered.count(TEXT) == 1
    assert chat[1:] == [("user", user_turn), ("assistant", "")]
    assert chat[0][0] == "system" and TEXT not in chat[0][1]


def test_demonstrations_are_earlier_turns(tokenizer):
    rendered = render_prompt(tokenizer, PROMPT, Context("c", TEXT, "demonstrations", DEMO))
    chat = turns(rendered)
    assert chat[1:] == [
        ("user", DEMO[0][0]),
        ("assistant", DEMO[0][1]),
        ("user", PROMPT),
        ("assistant", ""),
    ]
    assert all(rendered.count(piece) == 1 for piece in DEMO[0])


@pytest.mark.parametrize(
    "context", [None, Context("empty", "", "system"), Context("empty", "", "user_prefix")]
)
def test_no_context_gives_the_student_prompt_token_for_token(tokenizer, context):
    student = render_prompt(tokenizer, PROMPT)
    teacher = render_prompt(tokenizer, PROMPT, context)
    ids = tokenizer(student, add_special_tokens=False).input_ids
    assert tokenizer(teacher, add_special_tokens=False).input_ids == ids
    assert "You are a helpful AI assistant named SmolLM" in student  # the template's default
