"""accelerate's trackers, switched on from the training config: TensorBoard gets every step's
loss, gradient norm and learning rate; a tracker whose package is missing is one clear error."""

from __future__ import annotations

import json

import pytest

from opsa.errors import InputError
from opsa.training.config import OPSAConfig
from opsa.training.loop import check_trackers
from opsa.training.onpolicy import train_opsa

tensorboard = pytest.importorskip("tensorboard")


def test_tensorboard_gets_every_step(tiny_model_dir, prompt_files, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = OPSAConfig(
        batch_size=2,
        micro_batch_size=1,
        max_new_tokens=4,
        top_k=16,
        max_steps=3,
        report_to=["tensorboard"],
    )
    work = tmp_path / "work"
    train_opsa(
        tiny_model_dir,
        prompt_files["harmful"],
        prompt_files["benign"],
        prompt_files["contexts"],
        config,
        tmp_path / "out",
        work,
    )
    logged = [json.loads(line) for line in (tmp_path / "out/train_log.jsonl").open()]
    runs = [
        EventAccumulator(str(p.parent)).Reload()
        for p in (work / "trackers").rglob("events.out.tfevents.*")
    ]
    (found,) = [r for r in runs if "loss" in r.Tags()["scalars"]]  # hparams get a run of their own
    for tag in ("loss", "grad_norm", "lr", "tokens"):
        assert [e.step for e in found.Scalars(tag)] == [r["step"] for r in logged], tag
    assert [e.value for e in found.Scalars("loss")] == pytest.approx([r["loss"] for r in logged])


def test_a_tracker_without_its_package_is_named() -> None:
    with pytest.raises(InputError, match="training.report_to: 'wandb' needs the wandb package"):
        check_trackers(["wandb"])
