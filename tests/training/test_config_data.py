"""Config validation, labelled prompt loading, the batch schedule and the LR schedule."""

import json

import pytest

from opsa.errors import InputError
from opsa.prompting.sets import batch_schedule, load_labelled_prompts, load_selected_contexts
from opsa.training.config import OPSAConfig, SFTConfig, parse_config
from opsa.training.optim import lr_factor


@pytest.mark.parametrize(
    "data, key",
    [
        ({"lr": -1.0}, "lr"),
        ({"grad_clip": 0}, "grad_clip"),
        ({"warmup_ratio": 1.5}, "warmup_ratio"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 1e-5}, "learning_rate"),
        ({"jsd_beta": 1.0}, "jsd_beta"),
        ({"divergence": "kl"}, "divergence"),
    ],
)
def test_bad_setting_names_its_key(data, key):
    with pytest.raises(InputError, match=rf"cfg\.yaml: {key}: "):
        parse_config(OPSAConfig, data, "cfg.yaml")


def test_cross_field_rules():
    with pytest.raises(InputError, match="reverse KL only"):
        parse_config(OPSAConfig, {"estimator": "sampled"}, "c")
    with pytest.raises(InputError, match="micro_batch_size"):
        parse_config(SFTConfig, {"batch_size": 2, "micro_batch_size": 4}, "c")
    assert parse_config(OPSAConfig, {"estimator": "sampled", "divergence": "reverse_kl"}, "c")


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_prompts_need_both_types(tmp_path):
    h = write(tmp_path / "h.jsonl", [{"id": "a", "prompt": "x", "label": "harmful"}])
    empty = write(tmp_path / "b.jsonl", [])
    with pytest.raises(InputError, match="no benign prompts"):
        load_labelled_prompts(h, empty)
    with pytest.raises(InputError, match="no harmful prompts"):
        load_labelled_prompts(empty, h)
    with pytest.raises(InputError, match="labelled 'harmful', expected 'benign'"):
        load_labelled_prompts(h, h)


def test_selected_contexts(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps(
            {"harmful": {"id": "c1", "text": "Refuse.", "placement": "user_prefix"}, "benign": None}
        )
    )
    c_h, c_b = load_selected_contexts(path)
    assert c_h.id == "c1" and c_b is None
    path.write_text(json.dumps({"harmful": None, "benign": None}))
    with pytest.raises(InputError, match="harmful"):
        load_selected_contexts(path)


def test_schedule_is_seeded_mixed_and_covers_each_epoch():
    a = batch_schedule(10, 4, 2, seed=1)
    assert a == batch_schedule(10, 4, 2, seed=1)
    assert a != batch_schedule(10, 4, 2, seed=2)
    assert [len(b) for b in a] == [4, 4, 2, 4, 4, 2]
    assert sorted(sum(a[:3], [])) == list(range(10)) == sorted(sum(a[3:], []))
    assert a[:3] != a[3:]  # a fresh shuffle each epoch
    assert [len(b) for b in batch_schedule(10, 4, 1, 0, drop_last=True)] == [4, 4]


def test_a_fraction_trains_on_a_nested_seeded_share_of_the_items():
    full = batch_schedule(40, 4, 2, seed=3)
    assert full == batch_schedule(40, 4, 2, seed=3, fraction=1.0)
    shares = {
        f: set(sum(batch_schedule(40, 4, 2, seed=3, fraction=f), [])) for f in (0.1, 0.25, 0.5)
    }
    assert [len(shares[f]) for f in (0.1, 0.25, 0.5)] == [4, 10, 20]
    assert shares[0.1] < shares[0.25] < shares[0.5]
    assert shares[0.25] == set(sum(batch_schedule(40, 4, 2, seed=9, fraction=0.25), []))
    assert len(batch_schedule(40, 4, 2, seed=3, fraction=0.25)) == 6  # 10 items: 3 steps/epoch


def test_lr_schedules():
    cos = SFTConfig(warmup_ratio=0.1)
    factors = [lr_factor(s, 20, cos) for s in range(20)]
    assert factors[0] < factors[1] <= 1.0  # 2 warm-up steps
    assert factors[2] == pytest.approx(1.0)
    assert factors[-1] < 0.02 and all(
        a >= b for a, b in zip(factors[2:], factors[3:], strict=False)
    )
    const = SFTConfig(schedule="constant", warmup_steps=3)
    assert [lr_factor(s, 20, const) for s in (0, 2, 3, 19)] == [0.25, 0.75, 1.0, 1.0]
