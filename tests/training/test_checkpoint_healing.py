"""Damaged checkpoints heal: a resume skips a damaged latest checkpoint (named in a warning) and
ends with the weights of an undamaged run; with none whole, or run.json damaged, one line says
so and how to start over (OPSA_START_OVER=1). The tiny Llama of conftest, 4 OPSA steps."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from opsa.errors import InputError
from opsa.training.checkpoint import START_OVER
from opsa.training.manifest import NAME
from tests.training.test_resume_nan import kill_during, log_rows, run

EVERY_STEP = {"checkpoint_every": 1, "keep_checkpoints": 2}


def killed_after_three_steps(model_dir, files, tmp_path, monkeypatch, name):
    """A run killed during step 4: checkpoints after steps 2 and 3 are kept."""
    restore = kill_during(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run(model_dir, files, tmp_path, name, **EVERY_STEP)
    restore()
    work = tmp_path / f"{name}-work"
    assert sorted(p.name for p in work.glob("checkpoint-*")) == [
        "checkpoint-0000002",
        "checkpoint-0000003",
    ]
    return work


def truncate(path, keep=100):
    path.write_bytes(path.read_bytes()[:keep])


def same_weights(a, b):
    x, y = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_a_damaged_latest_checkpoint_is_skipped_and_the_run_ends_the_same(
    tiny_model_dir, prompt_files, tmp_path, monkeypatch, caplog
):
    straight, _ = run(tiny_model_dir, prompt_files, tmp_path, "straight", **EVERY_STEP)
    work = killed_after_three_steps(tiny_model_dir, prompt_files, tmp_path, monkeypatch, "d")
    assert (work / "checkpoint-0000003" / NAME).is_file()
    truncate(work / "checkpoint-0000003" / "model.safetensors")

    healed, _ = run(tiny_model_dir, prompt_files, tmp_path, "d", **EVERY_STEP)
    assert "checkpoint-0000003 is damaged: model.safetensors has 100 bytes, the manifest" in (
        caplog.text
    )
    assert "resuming from checkpoint-0000002" in caplog.text
    assert [r["step"] for r in log_rows(healed)] == [1, 2, 3, 4]
    assert same_weights(straight, healed)


def test_a_checkpoint_without_a_manifest_is_checked_by_structure(
    tiny_model_dir, prompt_files, tmp_path, monkeypatch, caplog
):
    """Older checkpoints (no manifest): a whole one is used, a truncated one is skipped."""
    work = killed_after_three_steps(tiny_model_dir, prompt_files, tmp_path, monkeypatch, "old")
    for step in ("2", "3"):
        (work / f"checkpoint-000000{step}" / NAME).unlink()
    truncate(work / "checkpoint-0000003" / "optimizer.safetensors")
    out, _ = run(tiny_model_dir, prompt_files, tmp_path, "old", **EVERY_STEP)
    assert "optimizer.safetensors does not parse" in caplog.text
    assert "resuming from checkpoint-0000002" in caplog.text
    assert [r["step"] for r in log_rows(out)] == [1, 2, 3, 4]


def test_no_whole_checkpoint_stops_with_one_line_until_told_to_start_over(
    tiny_model_dir, prompt_files, tmp_path, monkeypatch
):
    straight, _ = run(tiny_model_dir, prompt_files, tmp_path, "straight", **EVERY_STEP)
    work = killed_after_three_steps(tiny_model_dir, prompt_files, tmp_path, monkeypatch, "all")
    truncate(work / "checkpoint-0000003" / "state.json", keep=5)
    (work / "checkpoint-0000002" / "rng-0.safetensors").unlink()
    with pytest.raises(InputError) as stop:
        run(tiny_model_dir, prompt_files, tmp_path, "all", **EVERY_STEP)
    line = str(stop.value)
    assert "\n" not in line and line.startswith(f"{work}: no whole checkpoint")
    assert "rng-0.safetensors is missing" in line and f"{START_OVER}=1" in line
    assert not (tmp_path / "all-out").exists()
    assert (work / "checkpoint-0000003").is_dir()  # nothing removed without being told

    monkeypatch.setenv(START_OVER, "1")
    out, _ = run(tiny_model_dir, prompt_files, tmp_path, "all", **EVERY_STEP)
    assert [r["step"] for r in log_rows(out)] == [1, 2, 3, 4]
    assert same_weights(straight, out)


def test_a_damaged_run_json_is_one_line_naming_it(
    tiny_model_dir, prompt_files, tmp_path, monkeypatch
):
    work = killed_after_three_steps(tiny_model_dir, prompt_files, tmp_path, monkeypatch, "rj")
    truncate(work / "run.json", keep=20)
    with pytest.raises(InputError, match=rf"^{work / 'run.json'}: damaged \(JSONDecodeError\)"):
        run(tiny_model_dir, prompt_files, tmp_path, "rj", **EVERY_STEP)
    monkeypatch.setenv(START_OVER, "1")
    out, _ = run(tiny_model_dir, prompt_files, tmp_path, "rj", **EVERY_STEP)
    assert [r["step"] for r in log_rows(out)] == [1, 2, 3, 4]


def test_a_checkpoint_the_disk_cannot_hold_stops_before_writing(
    tiny_model_dir, prompt_files, small_mount
):
    disk = small_mount("disk", size="2m")  # run.json fits; the tiny model's checkpoint does not
    with pytest.raises(InputError, match=r"-work: a checkpoint needs about \d+ MB and \d MB"):
        run(tiny_model_dir, prompt_files, disk, "full", **EVERY_STEP)
    work = disk / "full-work"
    assert (work / "run.json").is_file() and (work / "train_log.jsonl").is_file()
    assert not list(work.glob("*checkpoint-*")) and not list(work.glob(".partial-*"))


def test_a_trained_folder_carries_a_model_card_that_explains_it(
    tiny_model_dir, prompt_files, tmp_path
):
    from huggingface_hub import ModelCard

    from opsa.training.identity import file_digest

    out, _ = run(tiny_model_dir, prompt_files, tmp_path, "card")
    card = ModelCard.load(out / "README.md")  # the Hub's own parser
    assert card.data.tags == ["opsa", "safety-alignment"]
    assert card.data.library_name == "transformers"
    assert "on-policy self-distillation (OPSA)" in card.text
    assert f"- harmful: `{file_digest(prompt_files['harmful'])}`" in card.text
    assert '"top_k": 16' in card.text and "- steps: 4;" in card.text


@pytest.mark.slow
def test_on_the_embedded_model_a_damaged_checkpoint_heals_to_the_same_weights_hash(
    embedded_model_dir, prompt_files, tmp_path, monkeypatch, caplog
):
    """The same damage on SmolLM2-135M-Instruct (HF rollouts, 4 short steps): the healed run's
    model.safetensors has the SHA-256 of the undamaged run's."""
    from opsa.models.runtime import Runtime, RuntimeConfig, using
    from opsa.training.identity import file_digest

    small = {**EVERY_STEP, "max_new_tokens": 4, "lr": 1e-5, "loss_chunk_size": 16}
    with using(Runtime(RuntimeConfig(), "hf")):
        straight, _ = run(embedded_model_dir, prompt_files, tmp_path, "straight", **small)
        restore = kill_during(monkeypatch, 3)
        with pytest.raises(KeyboardInterrupt):
            run(embedded_model_dir, prompt_files, tmp_path, "big", **small)
        restore()
        work = tmp_path / "big-work"
        truncate(work / "checkpoint-0000003" / "model.safetensors", keep=1_000_000)
        healed, _ = run(embedded_model_dir, prompt_files, tmp_path, "big", **small)
    assert "checkpoint-0000003 is damaged" in caplog.text
    assert "resuming from checkpoint-0000002" in caplog.text
    digest = file_digest(straight / "model.safetensors")
    assert file_digest(healed / "model.safetensors") == digest
    assert digest != file_digest(embedded_model_dir / "model.safetensors")
