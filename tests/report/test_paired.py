"""Paired comparisons on evaluation records the pipeline's own code wrote: responses judged by the
real refusal-pattern judge and scored by evaluate_set with its bootstrap."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from opsa.errors import InputError
from opsa.evaluation.bootstrap import bootstrap_replicates, stable_seed
from opsa.evaluation.evaluate import evaluate_set
from opsa.judges.run import judge_responses
from opsa.judges.spec import load_judge_spec
from opsa.layout import Variant
from opsa.records import write_jsonl
from opsa.report.evaluations import read_evaluations
from opsa.report.paired import paired_differences
from opsa.report.summary import ReportFiles, write_report

REFUSAL = "I'm sorry, but I can't help with that request."
COMPLIANCE = "Sure. Here is a detailed answer with the steps you asked for."
ROLES = {"harm": ("eval_harmful", "harmful"), "probe": ("eval_overrefusal", "benign")}
BOOT = 400


def evaluate(
    tmp: Path, variant: str, refused: dict[str, list[bool]], evals: Path | None = None
) -> list[Path]:
    """Judge and score one variant whose response to prompt i of each set refuses iff
    `refused[set][i]`; its records go to `evals`/<variant>/ (default `tmp`/eval)."""
    spec = load_judge_spec("refusal", {"kind": "refusal_pattern"})
    paths = []
    for name, pattern in refused.items():
        role, label = ROLES[name]
        rows = [
            {"id": f"{name}{i}", "prompt": f"q{i}", "label": label} for i in range(len(pattern))
        ]
        prompts = tmp / f"{name}-{len(pattern)}.jsonl"
        write_jsonl(prompts, [{**r, "source": "t", "meta": {}} for r in rows])
        gens, judged = tmp / variant / f"{name}.jsonl", tmp / variant / f"{name}.judged.jsonl"
        write_jsonl(
            gens,
            [
                {**r, "sample": 0, "response": REFUSAL if no else COMPLIANCE, "token_ids": []}
                for r, no in zip(rows, pattern, strict=True)
            ],
        )
        judge_responses(gens, judged, "refusal", spec)
        out = (evals or tmp / "eval") / variant / f"{name}.json"
        seed = None if variant == "base" else Variant.parse(variant).seed_or(0)
        evaluate_set(
            role, prompts, gens, judged, out, "m", variant, name, bootstrap=BOOT,
            training_seed=seed,
        )  # fmt: skip
        paths.append(out)
    return paths


def flags(n: int, refused: set[int]) -> list[bool]:
    return [i in refused for i in range(n)]


def test_paired_replicates_are_the_bootstrap_of_per_prompt_differences(tmp_path: Path) -> None:
    # the two variants differ on 3 of 20 harmful prompts and 2 of 20 probes
    ours = {"harm": flags(20, {0, 1, 2, 3, 4, 5}), "probe": flags(20, {7, 8})}
    theirs = {"harm": flags(20, {0, 1, 2}), "probe": flags(20, set())}
    paths = evaluate(tmp_path, "opsa", ours) + evaluate(tmp_path, "offpolicy_sd", theirs)
    differences = paired_differences(read_evaluations(paths), "offpolicy_sd")
    assert all(d.seed == 0 for d in differences)  # one seed: no separate mean rows
    found = {d.quantity: d for d in differences}

    ids = [f"harm{i}" for i in range(20)]
    # harmful compliance difference per prompt: refused by ours only -> -1
    per_prompt = [float(b) - float(a) for a, b in zip(ours["harm"], theirs["harm"], strict=True)]
    naive = 100 * bootstrap_replicates(per_prompt, ids, BOOT, stable_seed(0, "harm"))
    harm = found["harm"]
    assert harm.value == pytest.approx(-15.0)
    assert harm.low == pytest.approx(float(np.quantile(naive, 0.025)), abs=1e-3)
    assert harm.high == pytest.approx(float(np.quantile(naive, 0.975)), abs=1e-3)
    assert harm.share_below_zero == pytest.approx(float(np.mean(naive < 0)))
    # S = 1 − mean(harmful compliance, over-refusal): +15 on harm, −10 on probes -> +2.5
    assert found["S"].value == pytest.approx(2.5)
    # pairing: the differences never exceed what the 5 differing prompts allow
    assert found["probe"].low >= -1e-9 and found["probe"].high <= 100 * 2 / 20 * 3


def test_paired_interval_is_narrower_than_the_unpaired_one(tmp_path: Path) -> None:
    # both refuse the same 10 of 40 harmful prompts, ours one more: the paired interval of the
    # 2.5-point gap is tight, while the two variants' own intervals overlap widely
    ours = {"harm": flags(40, set(range(11))), "probe": flags(40, set())}
    theirs = {"harm": flags(40, set(range(10))), "probe": flags(40, set())}
    paths = evaluate(tmp_path, "opsa", ours) + evaluate(tmp_path, "offpolicy_sd", theirs)
    records = read_evaluations(paths)
    d = next(d for d in paired_differences(records, "offpolicy_sd") if d.quantity == "S")
    ours_s = next(r for r in records if r["variant"] == "opsa" and r["set"] == "harm")
    assert d.value == pytest.approx(1.25)
    assert d.low >= 0.0  # a prompt refused by ours and not by theirs is never negative
    assert d.high - d.low < 0.5 * 100 * (ours_s["ci_high"] - ours_s["ci_low"])


def test_seeds_give_a_mean_with_its_paired_and_across_seed_intervals(tmp_path: Path) -> None:
    harm_refused = {"opsa": 8, "opsa-seed1": 6, "opsa-seed2": 10}
    paths = []
    for variant, k in harm_refused.items():
        paths += evaluate(
            tmp_path, variant, {"harm": flags(16, set(range(k))), "probe": flags(16, set())}
        )
    for variant in ("offpolicy_sd", "offpolicy_sd-seed1", "offpolicy_sd-seed2"):
        paths += evaluate(
            tmp_path, variant, {"harm": flags(16, {0, 1, 2, 3}), "probe": flags(16, set())}
        )
    out = tmp_path / "report"
    write_report(paths, ReportFiles.in_folder(out), baseline="offpolicy_sd")

    rows = [
        r
        for r in csv.DictReader((out / "paired.csv").open(encoding="utf-8"))
        if r["quantity"] == "S"
    ]
    per_seed = {r["seed"]: float(r["value"]) for r in rows}
    expected = [100 * (k - 4) / 16 / 2 for k in (8, 6, 10)]  # S moves half the harm rate
    assert [per_seed[s] for s in ("0", "1", "2")] == pytest.approx(expected)
    mean_row = next(r for r in rows if r["seed"] == "")
    mean = statistics.fmean(expected)
    half = 4.302652729911275 * statistics.stdev(expected) / math.sqrt(3)
    assert float(mean_row["value"]) == pytest.approx(mean)
    assert float(mean_row["seed_low"]) == pytest.approx(mean - half)
    assert float(mean_row["seed_high"]) == pytest.approx(mean + half)
    assert 0 < float(mean_row["low"]) <= mean <= float(mean_row["high"])
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "## Paired comparisons against offpolicy_sd" in md
    assert f"| m | opsa | S | mean | {mean:+.1f} [" in md


def test_variants_resampled_differently_are_not_paired(tmp_path: Path) -> None:
    paths = evaluate(tmp_path, "opsa", {"harm": flags(12, {0}), "probe": flags(12, set())})
    paths += evaluate(tmp_path, "offpolicy_sd", {"harm": flags(16, {0}), "probe": flags(16, set())})
    with pytest.raises(InputError, match="m: opsa against offpolicy_sd, seed 0: set 'harm'"):
        write_report(paths, ReportFiles.in_folder(tmp_path / "report"), baseline="offpolicy_sd")
    assert not (tmp_path / "report" / "summary.md").exists()


def test_without_the_baseline_there_is_no_section(tmp_path: Path) -> None:
    paths = evaluate(tmp_path, "opsa", {"harm": flags(8, {0}), "probe": flags(8, set())})
    write_report(paths, ReportFiles.in_folder(tmp_path / "report"), baseline="offpolicy_sd")
    assert "Paired comparisons" not in (tmp_path / "report" / "summary.md").read_text()
    assert (tmp_path / "report" / "paired.csv").read_text().startswith("model,method,quantity")
