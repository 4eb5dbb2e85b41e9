"""Data-parallel training in 2 processes on CPU (accelerate launch, gloo), through the command
a `train` rule runs: the same global batch and loss curve as one process, the logged loss is
the global token mean, a process without items joins every collective, checkpoints are
written once and resume under 2 processes to the same weights.

Setting: the tiny random Llama, 4 prompts, batch_size 3 (steps of 3, 1, 3, 1 prompts): with
micro_batch_size 1 the second process has one micro-batch fewer than the first in the 3-prompt
steps and no prompt at all in the 1-prompt steps. Rollouts are near-greedy (temperature 1e-3)
so both runs train on the same completions whatever each process's sampling seed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from opsa.records import write_jsonl
from opsa.training.config import OPSAConfig, SFTConfig
from opsa.training.onpolicy import train_opsa
from opsa.training.sft import train_sft

pytestmark = pytest.mark.slow

COMMON = dict(
    batch_size=3,
    micro_batch_size=1,
    epochs=2,
    lr=1e-3,
    schedule="constant",
    warmup_steps=0,
    checkpoint_every=2,
    keep_checkpoints=1,
    cpu_threads=1,
    loss_chunk_size=8,
)
OPSA = COMMON | dict(max_new_tokens=6, top_k=16, temperature=1e-3)


def launch(method: str, config: dict, model_dir: Path, out: Path, work: Path, **inputs) -> None:
    """`python -m opsa train METHOD --processes 2 ...`, as the train rule runs it."""
    command = [sys.executable, "-m", "opsa", "train", method, "--processes", "2"]
    command += ["--config", json.dumps(config), "--model-dir", str(model_dir)]
    command += ["--out", str(out), "--work-dir", str(work)]
    for name, path in inputs.items():
        command += ["--input", f"{name}={path}"]
    env = os.environ | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "model.safetensors")


def same_curve(a: list[dict], b: list[dict]) -> None:
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3, 4]
    assert [r["tokens"] for r in a] == [r["tokens"] for r in b]  # same global batch
    for x, y in zip(a, b, strict=True):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-4, abs=1e-6)  # the global mean


def test_opsa_in_two_processes(tiny_model_dir, prompt_files, tmp_path):
    one = tmp_path / "one"
    train_opsa(
        tiny_model_dir,
        prompt_files["harmful"],
        prompt_files["benign"],
        prompt_files["contexts"],
        OPSAConfig(**OPSA),
        one,
        tmp_path / "one-work",
    )
    two, work = tmp_path / "two", tmp_path / "two-work"
    launch("opsa", OPSA, tiny_model_dir, two, work, **prompt_files)
    same_curve(rows(one), rows(two))
    a, b = weights(one), weights(two)
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)
    diag = json.loads((two / "token_diagnostics.json").read_text())  # both processes' tokens
    assert sum(p["count"] for p in diag["per_position"]) == sum(r["tokens"] for r in rows(two))

    # written once: one model and optimiser, one RNG state per process
    (ckpt,) = sorted(work.glob("checkpoint-*"))
    assert ckpt.name == "checkpoint-0000002"
    names = sorted(p.name for p in ckpt.iterdir())
    assert names.count("model.safetensors") == 1 and "rng-0.json" in names and "rng-1.json" in names

    # resume under 2 processes from the step-2 checkpoint: steps 3-4 again, the same weights
    kept = tmp_path / "first"
    shutil.move(two, kept)
    launch("opsa", OPSA, tiny_model_dir, two, work, **prompt_files)
    assert rows(two) == [
        r | {"seconds": s["seconds"], "peak_mem_mb": s["peak_mem_mb"]}
        for r, s in zip(rows(kept), rows(two), strict=True)
    ]
    c = weights(two)
    assert all(torch.equal(weights(kept)[k], c[k]) for k in c)


def test_sft_in_two_processes(tiny_model_dir, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    texts = ["I can't help with that.", "Paris.", "Use `kill PID`.", "No."]
    write_jsonl(
        pairs,
        [{"id": f"p{i}", "prompt": f"Question {i}?", "response": t} for i, t in enumerate(texts)],
    )
    config = COMMON | dict(max_response_tokens=16)
    one = tmp_path / "one"
    train_sft(tiny_model_dir, pairs, SFTConfig(**config), one, tmp_path / "one-work")
    two = tmp_path / "two"
    work = tmp_path / "two-work"
    launch("offpolicy_sd", config, tiny_model_dir, two, work, offpolicy_pairs=pairs)
    same_curve(rows(one), rows(two))
    a, b = weights(one), weights(two)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
