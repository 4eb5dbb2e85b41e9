"""export-model: a trained folder ready to share, its card (the Hub's parser reads it) completed
with the variant's evaluation, the weights hard-linked, records of another variant refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from huggingface_hub import ModelCard

from opsa.training.model_card import model_card
from tests.report.test_paired import evaluate, flags


def trained_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "models/m/opsa"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text("{}")
    identity = {"stage": "opsa", "model_dir": str(tmp_path / "base"), "inputs": {"harmful": "ab"}}
    card = model_card("opsa", identity, {"lr": 1e-4}, [{"step": 1, "loss": 0.5, "tokens": 9}])
    (folder / "README.md").write_text(card)
    return folder


def export(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "opsa", "export-model", *args]
    return subprocess.run(command, capture_output=True, text=True)


def test_the_shared_folder_carries_its_evaluation(tmp_path: Path) -> None:
    folder = trained_folder(tmp_path)
    evals = evaluate(tmp_path, "opsa", {"harm": flags(8, {0, 1}), "probe": flags(8, {3})})
    out = tmp_path / "shared/opsa"
    done = export("--model-dir", str(folder), "--evals", *map(str, evals), "--out", str(out))
    assert done.returncode == 0, done.stderr
    card = ModelCard.load(out / "README.md")
    assert card.data.tags == ["opsa", "safety-alignment"]
    assert "## Evaluation" in card.text
    assert "| harm | harmful_compliance | 75.0 [" in card.text  # 6 of 8 not refused
    assert "| probe | over_refusal | 12.5 [" in card.text and "| refusal |" in card.text
    assert "| all | S |" in card.text
    assert (out / "model.safetensors").stat().st_ino == (folder / "model.safetensors").stat().st_ino
    assert card.content.startswith((folder / "README.md").read_text().rstrip("\n"))


def test_records_of_two_variants_are_refused(tmp_path: Path) -> None:
    folder = trained_folder(tmp_path)
    evals = evaluate(tmp_path, "opsa", {"harm": flags(8, {0}), "probe": flags(8, set())})
    evals += evaluate(tmp_path, "base", {"harm": flags(8, {0}), "probe": flags(8, set())})
    out = tmp_path / "shared/opsa"
    done = export("--model-dir", str(folder), "--evals", *map(str, evals), "--out", str(out))
    assert done.returncode == 1 and not out.exists()
    assert done.stderr.strip().endswith("the evaluations are of 2 model variants, not one")
