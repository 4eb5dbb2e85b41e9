"""Resume determinism, NaN stop, work_dir ownership and atomic outputs of an OPSA run.

Uses the tiny randomly initialised Llama from conftest (with the embedded tokenizer): several
steps run in seconds, and resume determinism does not depend on the model's quality.
"""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file

from opsa.training import onpolicy
from opsa.training.config import OPSAConfig
from opsa.training.onpolicy import OPSATask, train_opsa

CONFIG = dict(
    batch_size=2,
    micro_batch_size=1,
    max_new_tokens=6,
    top_k=16,
    epochs=2,
    checkpoint_every=2,
    keep_checkpoints=2,
    lr=1e-3,
    loss_chunk_size=4,
    teacher="ema",
    ema_decay=0.5,
)


def run(model_dir, files, tmp_path, name, **overrides):
    out, work = tmp_path / f"{name}-out", tmp_path / f"{name}-work"
    train_opsa(
        model_dir,
        files["harmful"],
        files["benign"],
        files["contexts"],
        OPSAConfig(**(CONFIG | overrides)),
        out,
        work,
    )
    return out, work


def log_rows(out):
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def kill_during(monkeypatch, index):
    """OPSA's backward pass raises KeyboardInterrupt at step `index` (0-based), as a kill
    would; the returned function restores it."""
    original = OPSATask.backward

    def dies(self, items, step):
        if step == index:
            raise KeyboardInterrupt("killed")
        return original(self, items, step)

    monkeypatch.setattr(OPSATask, "backward", dies)
    return lambda: monkeypatch.setattr(OPSATask, "backward", original)


def test_killed_run_resumes_to_the_same_weights(
    tiny_model_dir, prompt_files, tmp_path, monkeypatch
):
    """4 steps (2 epochs of 2 batches, EMA teacher) uninterrupted vs killed during step 3 and
    restarted from the step-2 checkpoint: identical final weights and logs."""
    straight, _ = run(tiny_model_dir, prompt_files, tmp_path, "straight")

    restore = kill_during(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_model_dir, prompt_files, tmp_path, "resumed")
    assert not (tmp_path / "resumed-out").exists()  # no partial output
    assert (tmp_path / "resumed-work" / "checkpoint-0000002").is_dir()
    restore()
    resumed, _ = run(tiny_model_dir, prompt_files, tmp_path, "resumed")

    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    base = load_file(tiny_model_dir / "model.safetensors")
    assert not all(torch.equal(a[k], base[k]) for k in a)
    rows_a, rows_b = log_rows(straight), log_rows(resumed)
    assert [r["step"] for r in rows_b] == [1, 2, 3, 4]
    assert [r["loss"] for r in rows_a] == [r["loss"] for r in rows_b]
    assert [r["lr"] for r in rows_a] == [r["lr"] for r in rows_b]
    diag_a = json.loads((straight / "token_diagnostics.json").read_text())
    assert diag_a == json.loads((resumed / "token_diagnostics.json").read_text())


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    tiny_model_dir, prompt_files, tmp_path, monkeypatch
):
    calls = {"n": 0}
    original = onpolicy.distill_from_hidden

    def nan_from_step_3(spec, head, h, t, y):
        terms, value = original(spec, head, h, t, y)
        calls["n"] += 1
        return (terms * float("nan"), value) if calls["step"] >= 2 else (terms, value)

    original_backward = OPSATask.backward

    def track(self, items, step):
        calls["step"] = step
        return original_backward(self, items, step)

    monkeypatch.setattr(onpolicy, "distill_from_hidden", nan_from_step_3)
    monkeypatch.setattr(OPSATask, "backward", track)
    with pytest.raises(RuntimeError, match=r"step 3: loss is nan.*checkpoint-0000002"):
        run(tiny_model_dir, prompt_files, tmp_path, "nan", teacher="base")
    work = tmp_path / "nan-work"
    assert (work / "checkpoint-0000002").is_dir()
    assert [r["step"] for r in map(json.loads, (work / "train_log.jsonl").open())] == [1, 2]
    assert not (tmp_path / "nan-out").exists()


def test_work_dir_of_another_run_is_discarded(tiny_model_dir, prompt_files, tmp_path, caplog):
    """A changed config reruns the job (Snakemake): the old run's checkpoints must not be
    resumed, nor block the new run."""
    _, work = run(tiny_model_dir, prompt_files, tmp_path, "a", max_steps=1, teacher="base")
    before = json.loads((work / "run.json").read_text())
    out, _ = run(tiny_model_dir, prompt_files, tmp_path, "a", max_steps=2, teacher="base")
    assert json.loads((work / "run.json").read_text()) != before
    assert "checkpoints of a different run" in caplog.text
    assert [r["step"] for r in log_rows(out)] == [1, 2]


class Planted:
    """Unpickling this creates `marker` (what a malicious pickle could do, harmlessly)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_resume_unpickles_nothing_planted_in_a_checkpoint(
    tiny_model_dir, prompt_files, tmp_path, monkeypatch
):
    """A checkpoint is JSON and safetensors only; pickles planted under the names accelerate's
    save_state used (and torch's) are never opened when the run resumes from it."""
    restore = kill_during(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_model_dir, prompt_files, tmp_path, "planted")
    restore()
    ckpt = tmp_path / "planted-work" / "checkpoint-0000002"
    assert {p.suffix for p in ckpt.iterdir()} == {".json", ".safetensors"}
    marker = tmp_path / "pwned"
    for name in [
        "custom_checkpoint_0.pkl",
        "custom_checkpoint_1.pkl",
        "random_states_0.pkl",
        "optimizer.bin",
        "scheduler.bin",
        "pytorch_model.bin",
        "model.pt",
    ]:
        with (ckpt / name).open("wb") as f:
            pickle.dump(Planted(marker), f)
    with pytest.raises(FileNotFoundError):  # the payload works when unpickled
        pickle.loads(pickle.dumps(Planted(tmp_path / "no-such-dir" / "x")))
    out, _ = run(tiny_model_dir, prompt_files, tmp_path, "planted")
    assert [r["step"] for r in log_rows(out)] == [1, 2, 3, 4]
    assert not marker.exists()
