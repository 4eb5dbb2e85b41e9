"""The SafeSteer steps on the command line, on the embedded model: direction, token set (JSON
and its Markdown table, also as summary.md's section), one training step, and a token set given
twice."""

from __future__ import annotations

import json

import pytest

from opsa.cli import main
from opsa.errors import InputError
from opsa.report import safesteer
from opsa.steering.direction import RefusalDirection
from tests.steering.conftest import HARMFUL, HARMLESS


def _write(path, prompts, label):
    rows = [{"id": f"{label}{i}", "prompt": p, "label": label} for i, p in enumerate(prompts)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_direction_tokens_and_training_from_the_command_line(embedded_model_dir, tmp_path):
    harmful = _write(tmp_path / "harmful.jsonl", HARMFUL, "harmful")
    benign = _write(tmp_path / "benign.jsonl", HARMLESS, "benign")
    model = str(embedded_model_dir)
    direction, tokens = tmp_path / "d.safetensors", tmp_path / "tokens.json"
    run = ["--threads", "1", "--backend", "hf"]
    assert main([*run, "steering-direction", "--model-dir", model, "--harmful", str(harmful),
                 "--harmless", str(benign), "--settings", '{"layer": 10}',
                 "--out", str(direction)]) == 0  # fmt: skip
    assert RefusalDirection.load(direction).layer == 10
    # the scan off (search: null), the rule's scan record says so
    assert main([*run, "steering-direction", "--model-dir", model, "--harmful", str(harmful),
                 "--harmless", str(benign), "--settings", '{"layer": 10, "search": null}',
                 "--out", str(direction), "--scan", str(tmp_path / "scan.json")]) == 0  # fmt: skip
    skipped = json.loads((tmp_path / "scan.json").read_text())
    assert skipped["scanned"] is False and skipped["chosen"] == {"layer": 10, "position": -1}
    settings = '{"count": 5, "positions": 2, "samples": 2, "inner_top_k": 10}'
    assert main([*run, "safety-tokens", "--model-dir", model, "--prompts", str(benign),
                 "--direction", str(direction), "--coefficient", "4", "--settings", settings,
                 "--out", str(tokens), "--summary", str(tmp_path / "tokens.md")]) == 0  # fmt: skip
    data = json.loads(tokens.read_text())
    assert len(data["tokens"]) == 5 and data["coefficient"] == 4.0 and data["layer"] == 10
    table = (tmp_path / "tokens.md").read_text()
    assert all(f"| {t['id']} |" in table for t in data["tokens"])
    section = safesteer.markdown_section([tmp_path / "tokens.md"])  # summary.md's section
    assert section.count("SafeSteer: refusal direction") == 1 and "decoder layer 10" in section
    assert all(f"| {t['id']} |" in section for t in data["tokens"])
    with pytest.raises(InputError, match="not a SafeSteer token table"):
        safesteer.markdown_section([harmful])
    train = [*run, "train", "safesteer", "--model-dir", model, "--input", f"harmful={harmful}",
             "--input", f"direction={direction}", "--input", f"safety_tokens={tokens}",
             "--out", str(tmp_path / "out"), "--work-dir", str(tmp_path / "work")]  # fmt: skip
    config = {"max_steps": 1, "batch_size": 2, "micro_batch_size": 2, "max_new_tokens": 4}
    assert main([*train, "--config", json.dumps(config | {"steering_coefficient": 4.0})]) == 0
    log = json.loads((tmp_path / "out" / "train_log.jsonl").read_text().splitlines()[0])
    assert log["tokens"] > 0


def test_token_ids_other_than_the_token_sets_are_an_error(embedded_model_dir, tmp_path, capsys):
    """The token ids come from the token set; a config may repeat them (a relaunched
    process's config does) but not change them."""
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [{"id": 5}]}))
    code = main(["train", "safesteer", "--config", '{"token_ids": [6]}', "--model-dir",
                 str(embedded_model_dir), "--input", "harmful=h.jsonl", "--input",
                 "direction=d.safetensors", "--input", f"safety_tokens={tokens}", "--out",
                 str(tmp_path / "o"), "--work-dir", str(tmp_path / "w")])  # fmt: skip
    assert code == 1
    assert "token_ids: differ from those of --input safety_tokens" in capsys.readouterr().err
