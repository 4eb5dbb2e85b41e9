"""The refusal direction and the steering hook, on the embedded model."""

from __future__ import annotations

import pytest
import torch

from opsa.errors import InputError
from opsa.models.load import load_model
from opsa.prompting.chat import render_user
from opsa.steering.direction import DirectionSettings, RefusalDirection, extract_direction
from opsa.steering.hook import Steering, decoder_layers, steered
from tests.steering.conftest import HARMFUL, HARMLESS


def _ids(tokenizer, prompt):
    text = render_user(tokenizer, prompt)
    return torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])


def _captured_mean(model, tokenizer, prompts, layer, position):
    """Independent reference: what decoder layer `layer` receives, caught by a hook."""
    seen = []
    hook = decoder_layers(model)[layer].register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(
            (args[0] if args else kwargs["hidden_states"])[0, position].double()
        ),
        with_kwargs=True,
    )
    try:
        with torch.no_grad():
            for p in prompts:
                model(input_ids=_ids(tokenizer, p))
    finally:
        hook.remove()
    return torch.stack(seen).mean(0)


@pytest.fixture(scope="module")
def direction(embedded):
    model, tokenizer = embedded
    return extract_direction(model, tokenizer, HARMFUL, HARMLESS, DirectionSettings(layer=12))


def test_direction_is_the_difference_of_means_at_the_layer_input(embedded, direction):
    model, tokenizer = embedded
    want = _captured_mean(model, tokenizer, HARMFUL, 12, -1) - _captured_mean(
        model, tokenizer, HARMLESS, 12, -1
    )
    assert direction.layer == 12 and direction.position == -1
    assert torch.allclose(direction.vector.double(), want, atol=1e-5)
    assert direction.vector.norm() > 0


def test_default_layer_is_the_middle_one_and_a_bad_layer_is_an_error(embedded):
    model, tokenizer = embedded
    d = extract_direction(model, tokenizer, HARMFUL[:1], HARMLESS[:1], DirectionSettings())
    assert d.layer == model.config.num_hidden_layers // 2
    with pytest.raises(InputError, match="steering layer 99"):
        extract_direction(model, tokenizer, HARMFUL, HARMLESS, DirectionSettings(layer=99))


def test_direction_file_round_trip(direction, tmp_path):
    path = tmp_path / "direction.safetensors"
    direction.save(path, {"harmful": 3, "harmless": 3})
    back = RefusalDirection.load(path)
    assert torch.equal(back.vector, direction.vector)
    assert (back.layer, back.position) == (12, -1)
    (tmp_path / "bad.safetensors").write_text("nope")
    with pytest.raises(InputError, match="bad.safetensors"):
        RefusalDirection.load(tmp_path / "bad.safetensors")


def test_hook_changes_the_teacher_and_never_the_student(embedded, direction, embedded_model_dir):
    teacher, tokenizer = embedded
    student = load_model(embedded_model_dir)  # a second instance, as in training
    ids = _ids(tokenizer, HARMLESS[0])
    with torch.no_grad():
        base = student(input_ids=ids).logits
        with steered(teacher, Steering(direction, 1.0)):
            steered_logits = teacher(input_ids=ids).logits
            student_logits = student(input_ids=ids).logits
        after = teacher(input_ids=ids).logits
    assert (steered_logits - base).abs().max() > 1e-2
    assert torch.equal(student_logits, base)  # the student is never steered
    assert torch.equal(after, base)  # removing the hook restores the teacher


def test_coefficient_zero_is_the_base_model_exactly(embedded, direction):
    model, tokenizer = embedded
    ids = _ids(tokenizer, HARMFUL[0])
    with torch.no_grad():
        base = model(input_ids=ids).logits
        with steered(model, Steering(direction, 0.0)):
            zero = model(input_ids=ids).logits
    assert torch.equal(zero, base)


def test_a_direction_of_the_wrong_size_is_an_error(embedded):
    model, _ = embedded
    wrong = RefusalDirection(torch.ones(7), 3, -1)
    with pytest.raises(InputError, match="hidden size"):
        Steering(wrong, 1.0).attach(model)
