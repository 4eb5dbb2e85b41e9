"""Arms against a reference run: records the pipeline's own code wrote (real judge, real
bootstrap) in two run directories, compared seed by seed and across seeds."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from opsa.errors import InputError
from opsa.prompting.placement import Context
from opsa.records import write_json
from opsa.report.compare_runs import arm_differences, markdown, run_records
from tests.report.test_paired import evaluate, flags

T_975_DF2 = 4.302652729911275


def run(tmp: Path, name: str, harm_refused: dict[str, int], top_k: int) -> Path:
    """A run directory whose `opsa` variants refuse the first k of 16 harmful prompts (and no
    probe), with the first seed's training settings."""
    root = tmp / name
    for variant, k in harm_refused.items():
        refused = {"harm": flags(16, set(range(k))), "probe": flags(16, set())}
        evaluate(tmp / f"work-{name}", variant, refused, root / "results/eval/m")
    write_json(root / "results/models/m/opsa/train_config.json", {"lr": 1e-4, "top_k": top_k})
    return root


def test_an_arm_is_paired_with_the_reference_seed_by_seed(tmp_path: Path) -> None:
    reference = run(tmp_path, "ref", {"opsa": 8, "opsa-seed1": 6, "opsa-seed2": 10}, 64)
    arm = run(tmp_path, "arm", {"opsa": 12, "opsa-seed1": 7, "opsa-seed2": 10}, 512)
    diffs = arm_differences(run_records(reference), run_records(arm), "topk512", "opsa")
    s = {d.seed: d for d in diffs if d.quantity == "S"}
    expected = [100 * k / 16 / 2 for k in (12 - 8, 7 - 6, 10 - 10)]  # S: half the harm rate
    assert [s[seed].value for seed in (0, 1, 2)] == pytest.approx(expected)
    mean = statistics.fmean(expected)
    half = T_975_DF2 * statistics.stdev(expected) / math.sqrt(3)
    assert s[None].value == pytest.approx(mean)
    assert (s[None].seed_low, s[None].seed_high) == pytest.approx((mean - half, mean + half))
    assert s[2].low == s[2].high == 0.0  # same answers at seed 2: the paired interval is a point

    table = markdown(reference, {"topk512": arm}, "opsa")
    assert "| topk512 | top_k: 64 → 512 | m | S | " in table
    row = next(line for line in table.splitlines() if "| S |" in line)
    assert f"{mean:+.1f} [{mean - half:+.1f}, {mean + half:+.1f}]" in row
    assert "0: +12.5 [" in row and "2: +0.0 [+0.0, +0.0]" in row
    assert table.index("| S |") < table.index("| harm |") < table.index("| probe |")


def test_a_pinned_context_is_told_as_what_the_arm_changed(tmp_path: Path) -> None:
    """A placement or fixed-c_b arm changes no training setting: the column names its context."""
    label = "The following prompt is harmful."
    for name, placement, benign in (("ref", "system", None), ("arm", "user_prefix", "ok")):
        root = run(tmp_path, name, {"opsa": 8}, 64)
        selected = {
            "harmful": Context(f"label@{placement}", label, placement).to_row(),
            "benign": Context(benign, "It is safe.", "system").to_row() if benign else None,
        }
        write_json(root / "results/contexts/m/selected.json", selected)
    table = markdown(tmp_path / "ref", {"placement": tmp_path / "arm"}, "opsa")
    assert "| placement | c_h: label@system → label@user_prefix, c_b: None → ok | m | S |" in table


def test_an_arm_without_a_shared_seed_is_an_error_naming_it(tmp_path: Path) -> None:
    reference = run(tmp_path, "ref", {"opsa": 8}, 64)
    arm = run(tmp_path, "arm", {"opsa-seed5": 8}, 64)
    with pytest.raises(InputError, match="arm 'late': no 'opsa' variant trained at a seed"):
        arm_differences(run_records(reference), run_records(arm), "late", "opsa")


def test_the_command_writes_the_table_or_one_line(tmp_path: Path) -> None:
    reference = run(tmp_path, "ref", {"opsa": 8, "opsa-seed1": 6}, 64)
    arm = run(tmp_path, "arm", {"opsa": 9, "opsa-seed1": 9}, 64)
    out = tmp_path / "sensitivity.md"
    opsa = [sys.executable, "-m", "opsa", "compare-runs", "--reference", str(reference)]
    done = subprocess.run(
        [*opsa, "--arm", f"same={arm}", "--method", "opsa", "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| same | – | m | S |" in out.read_text()  # nothing changed in train_config.json
    missing = subprocess.run(
        [*opsa, "--arm", f"gone={tmp_path / 'nowhere'}", "--method", "opsa"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"opsa compare-runs: error: {tmp_path / 'nowhere'}: no evaluation records under "
        "results/eval/"
    ]
