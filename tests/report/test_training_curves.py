"""Training curves from the logs training writes: a plot per policy and its summary.md link."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsa.cli import main
from opsa.records import write_jsonl
from opsa.report.training_curves import markdown_section


def _log(folder: Path, steps: int, loss0: float) -> Path:
    rows = [
        {
            "step": k + 1,
            "loss": loss0 / (k + 1),
            "lr": 1e-4 * (k + 1) / steps,
            "grad_norm": 2.0 - k / steps,
            "tokens": 300 + k,
            "seconds": 1.0,
        }
        for k in range(steps)
    ]
    write_jsonl(folder / "train_log.jsonl", rows)
    return folder


def test_each_variants_log_is_plotted_and_linked(tmp_path: Path) -> None:
    opsa = _log(tmp_path / "opsa", 6, 2.0)
    sft = _log(tmp_path / "offpolicy_sd", 4, 3.0)
    out = tmp_path / "report/training/smollm2.png"
    assert (
        main(
            [
                "training-curves",
                "--models",
                f"opsa={opsa}",
                f"offpolicy_sd={sft}",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 20_000
    section = markdown_section([out])
    assert "## Training curves" in section and "(training/smollm2.png)" in section


def test_a_log_without_a_logged_quantity_names_file_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "opsa"
    write_jsonl(folder / "train_log.jsonl", [{"step": 1, "loss": 1.0, "lr": 1e-4, "tokens": 3}])
    out = tmp_path / "curves.png"
    assert main(["training-curves", "--models", f"opsa={folder}", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train_log.jsonl" in err[0] and "grad_norm" in err[0]
    assert not out.exists()
