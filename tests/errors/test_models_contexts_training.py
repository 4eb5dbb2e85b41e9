"""Bad models, contexts, judges and training settings, through `python -m opsa <step>` as the
rules call them: one line naming the culprit, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

DROPS_SYSTEM = (
    "{% for m in messages %}{% if m['role'] != 'system' %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_gguf_file_that_is_not_gguf(opsa, tmp_path):
    (tmp_path / "model.gguf").write_text("not a model")
    run = opsa("prepare-model", "--spec", json.dumps({"source": "model.gguf"}), "--out", "m")
    run.error("model source 'model.gguf'", "not a GGUF file")
    assert not (tmp_path / "m").exists()


def test_hub_id_fails_at_once_when_the_hub_cannot_be_reached(opsa, tmp_path):
    spec = json.dumps({"source": "nobody-here/no-such-model"})
    # port 9 of this machine refuses connections: the hub counts as unreachable
    run = opsa("prepare-model", "--spec", spec, "--out", "m", HF_ENDPOINT="http://127.0.0.1:9")
    run.error("model source 'nobody-here/no-such-model'", "offline")
    assert not (tmp_path / "m").exists()


def test_missing_local_model_directory(opsa, tmp_path):
    run = opsa("prepare-model", "--spec", json.dumps({"source": "./models/mine"}), "--out", "m")
    run.error("model source './models/mine'", "directory not found")


def _user_pool(tmp_path: Path, rows: list[dict]) -> str:
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return json.dumps({"grid": None, "user_file": str(path)})


@pytest.mark.parametrize(
    ("row", "named"),
    [
        ({"id": "quiet", "text": "  ", "placement": "system"}, ["context 'quiet'", "empty text"]),
        (
            {"id": "odd", "text": "Refuse.", "placement": "footnote"},
            ["context 'odd'", "unknown placement 'footnote'"],
        ),
    ],
)
def test_bad_user_context(opsa, tmp_path, embedded_model_dir, row, named):
    spec = _user_pool(tmp_path, [row])
    run = opsa(
        "context-candidates", "--spec", spec, "--model-dir", str(embedded_model_dir),
        "--out", "c.jsonl",
    )  # fmt: skip
    run.error(*named)
    assert not (tmp_path / "c.jsonl").exists()


def test_chat_template_that_drops_a_context(opsa, tmp_path, embedded_model_dir):
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(embedded_model_dir / name, model / name)
    (model / "chat_template.jinja").write_text(DROPS_SYSTEM)
    spec = _user_pool(tmp_path, [{"id": "sys", "text": "Refuse harm.", "placement": "system"}])
    run = opsa("context-candidates", "--spec", spec, "--model-dir", str(model), "--out", "c.jsonl")
    run.error("context 'sys'", "does not keep placement 'system'")
    assert not (tmp_path / "c.jsonl").exists()


def test_batch_not_a_multiple_of_micro_batch_single_process(opsa, tmp_path):
    settings = json.dumps({"batch_size": 6, "micro_batch_size": 4})
    run = opsa(
        "train", "offpolicy_sd", "--config", settings, "--model-dir", "m",
        "--input", "offpolicy_pairs=p.jsonl", "--out", "out", "--work-dir", "work",
    )  # fmt: skip
    run.error("batch_size (6) must be a multiple of micro_batch_size (4)")
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def test_guard_judge_without_a_model(opsa, tmp_path):
    row = {"id": "a", "sample": 0, "prompt": "p", "response": "r"}
    (tmp_path / "g.jsonl").write_text(json.dumps(row) + "\n")
    spec = json.dumps({"kind": "llama_guard"})
    run = opsa("judge", "--generations", "g.jsonl", "--judge", "lg", "--spec", spec, "--out", "j")
    run.error("judge 'lg'", "needs a judge model")
    assert not (tmp_path / "j").exists()


def _model_copy(source: Path, folder: Path, weights: bool = True) -> Path:
    """The embedded model's files in `folder` (the weights hard-linked when wanted)."""
    folder.mkdir()
    for path in source.iterdir():
        if path.suffix == ".safetensors":
            if weights:
                (folder / path.name).hardlink_to(path)
        else:
            shutil.copy(path, folder / path.name)
    return folder


def _prepare(opsa, folder: Path):
    return opsa("prepare-model", "--spec", json.dumps({"source": str(folder)}), "--out", "m")


def test_truncated_weights_are_named(opsa, tmp_path, embedded_model_dir):
    model = _model_copy(embedded_model_dir, tmp_path / "mine", weights=False)
    with (embedded_model_dir / "model.safetensors").open("rb") as f:
        (model / "model.safetensors").write_bytes(f.read(10_000_000))
    _prepare(opsa, model).error(f"{model / 'model.safetensors'}: damaged safetensors file")
    assert not (tmp_path / "m").exists()


def test_half_written_config_is_named(opsa, tmp_path, embedded_model_dir):
    model = _model_copy(embedded_model_dir, tmp_path / "mine")
    text = (model / "config.json").read_text()
    (model / "config.json").write_text(text[: len(text) // 2])
    _prepare(opsa, model).error(f"{model / 'config.json'}: not valid JSON", "half-written")
    assert not (tmp_path / "m").exists()


def test_pickle_only_weights_are_named_with_the_conversion(opsa, tmp_path, embedded_model_dir):
    import torch

    model = _model_copy(embedded_model_dir, tmp_path / "mine", weights=False)
    torch.save({"lm_head.weight": torch.zeros(2, 2)}, model / "pytorch_model.bin")
    line = _prepare(opsa, model).error("weights are only pickles (pytorch_model.bin)")
    assert "save_pretrained" in line and "not a local folder" not in line
    assert not (tmp_path / "m").exists()


def test_chat_template_the_sandbox_refuses_is_named(opsa, tmp_path, embedded_model_dir):
    model = _model_copy(embedded_model_dir, tmp_path / "mine", weights=False)
    (model / "chat_template.jinja").write_text("{{ messages.__class__.__init__.__globals__ }}")
    spec = _user_pool(tmp_path, [{"id": "sys", "text": "Refuse harm.", "placement": "system"}])
    run = opsa("context-candidates", "--spec", spec, "--model-dir", str(model), "--out", "c.jsonl")
    run.error(f"{model / 'chat_template.jinja'}: the chat template is not allowed by the sandbox")
    assert not (tmp_path / "c.jsonl").exists()


def test_a_kv_cache_that_does_not_fit_names_the_runtime_key(opsa, tmp_path, embedded_model_dir):
    pytest.importorskip("vllm")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "Hi."}) + "\n")
    run = opsa(
        "--runtime", json.dumps({"vllm": {"cpu_kv_cache_mib": 4096 * 1024}}), "--backend", "vllm",
        "generate", "--model", str(embedded_model_dir), "--prompts", str(prompts),
        "--out", "g.jsonl",
    )  # fmt: skip
    line = run.error("runtime.vllm.cpu_kv_cache_mib = 4194304 MiB", "GiB of memory free")
    assert "VLLM_CPU_KVCACHE_SPACE" not in line
    assert not (tmp_path / "g.jsonl").exists()
