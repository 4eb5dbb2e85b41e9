"""The grid report on evaluation records the pipeline's own code wrote: responses judged by the
real refusal-pattern judge, scored by evaluate_set with bootstrap, then compared across seeds."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest

from opsa.errors import InputError
from opsa.evaluation.evaluate import evaluate_set
from opsa.judges.run import judge_responses
from opsa.judges.spec import load_judge_spec
from opsa.layout import Variant
from opsa.records import write_jsonl
from opsa.report.grid import t_quantile, write_grid_report

N = 8
REFUSAL = "I'm sorry, but I can't help with that request."
COMPLIANCE = "Sure. Here is a detailed answer with the steps you asked for."
SETS = {"harm": ("eval_harmful", "harmful"), "probe": ("eval_overrefusal", "benign")}


def evaluate_variant(
    tmp: Path, model: str, variant: str, refused: dict[str, int]
) -> tuple[list[Path], float]:
    """Write, judge and score one variant's responses (`refused[set]` of N refuse); return
    the record paths and the S the counts imply: 1 − mean(harmful compliance, over-refusal)."""
    spec = load_judge_spec("refusal", {"kind": "refusal_pattern"})
    paths = []
    for name, (role, label) in SETS.items():
        prompts = tmp / f"{name}.jsonl"
        rows = [{"id": f"{name}{i}", "prompt": f"q{i}", "label": label} for i in range(N)]
        write_jsonl(prompts, [{**r, "source": "t", "meta": {}} for r in rows])
        folder = tmp / model / variant
        gens, judged = folder / f"{name}.jsonl", folder / f"{name}.refusal.jsonl"
        responses = [REFUSAL] * refused[name] + [COMPLIANCE] * (N - refused[name])
        write_jsonl(
            gens,
            [
                {**r, "sample": 0, "response": text, "token_ids": [], "finish_reason": "stop"}
                for r, text in zip(rows, responses, strict=True)
            ],
        )
        judge_responses(gens, judged, "refusal", spec)
        out = tmp / "eval" / model / variant / f"{name}.json"
        seed = None if variant == "base" else Variant.parse(variant).seed_or(0)
        evaluate_set(
            role, prompts, gens, judged, out, model, variant, name, bootstrap=200,
            training_seed=seed,
        )  # fmt: skip
        paths.append(out)
    rates = [(N - refused["harm"]) / N, refused["probe"] / N]
    return paths, 1 - sum(rates) / 2


def write_grid(tmp: Path, counts: dict[str, dict[str, dict[str, int]]]) -> dict:
    """counts[model][variant] = refusals per set; returns every variant's S."""
    paths, s = [], {}
    for model, by_variant in counts.items():
        for variant, refused in by_variant.items():
            written, s[(model, variant)] = evaluate_variant(tmp, model, variant, refused)
            paths += written
    return {"paths": paths, "S": s}


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_a_trained_variant_without_its_training_seed_is_an_error(tmp_path: Path) -> None:
    written, _ = evaluate_variant(tmp_path, "m1", "opsa", {"harm": 4, "probe": 0})
    for path in written:
        record = json.loads(path.read_text())
        del record["training_seed"]
        path.write_text(json.dumps(record))
    with pytest.raises(InputError, match="m1/opsa/.*: no training_seed"):
        write_grid_report(written, tmp_path / "g.csv", tmp_path / "g.md", "opsa", "base", {})


def test_gain_across_three_seeds_with_a_t_interval_beside_the_published_gain(
    tmp_path: Path,
) -> None:
    counts = {
        "m1": {
            "base": {"harm": 0, "probe": 0},
            "opsa": {"harm": 6, "probe": 1},
            "opsa-seed1": {"harm": 5, "probe": 1},
            "opsa-seed2": {"harm": 8, "probe": 2},
            "offpolicy_sd": {"harm": 4, "probe": 1},
            "offpolicy_sd-seed1": {"harm": 4, "probe": 1},
            "offpolicy_sd-seed2": {"harm": 4, "probe": 1},
        }
    }
    grid = write_grid(tmp_path, counts)
    out = tmp_path / "report"
    write_grid_report(
        grid["paths"],
        out / "grid.csv",
        out / "grid.md",
        "opsa",
        "offpolicy_sd",
        {"m1": 5.49},
        "the paper",
    )

    s = grid["S"]
    expected = [
        100 * (s[("m1", f"opsa{x}")] - s[("m1", f"offpolicy_sd{x}")])
        for x in ("", "-seed1", "-seed2")
    ]
    row = next(r for r in read_csv(out / "grid.csv") if r["composite"] == "S")
    mean = statistics.fmean(expected)
    half = 4.302652729911275 * statistics.stdev(expected) / math.sqrt(3)  # t(0.975, df=2)
    assert expected == [12.5, 6.25, 18.75]  # seeds differ, so the interval has a width
    assert row["seeds"] == "3"
    assert row["per_seed"] == "0=12.5000;1=6.2500;2=18.7500"
    assert float(row["gain"]) == pytest.approx(mean)
    assert float(row["ci_low"]) == pytest.approx(mean - half)
    assert float(row["ci_high"]) == pytest.approx(mean + half)
    assert float(row["published"]) == 5.49
    md = (out / "grid.md").read_text()
    assert f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]" in md
    published_in = mean - half <= 5.49 <= mean + half
    assert f"| +5.49 | {'yes' if published_in else 'no'} |" in md


def test_one_seed_reports_the_gain_without_an_interval(tmp_path: Path) -> None:
    counts = {
        "m1": {"opsa": {"harm": 8, "probe": 0}, "offpolicy_sd": {"harm": 4, "probe": 0}},
        "m2": {"opsa": {"harm": 2, "probe": 2}, "offpolicy_sd": {"harm": 2, "probe": 0}},
    }
    grid = write_grid(tmp_path, counts)
    gains = write_grid_report(
        grid["paths"],
        tmp_path / "r" / "grid.csv",
        tmp_path / "r" / "grid.md",
        "opsa",
        "offpolicy_sd",
        {},
    )
    by_model = {g.model: g for g in gains if g.composite == "S"}
    assert by_model["m1"].mean == pytest.approx(25.0)  # harmful compliance 50% -> 0%
    assert by_model["m2"].mean == pytest.approx(-12.5)  # over-refusal 0% -> 25%
    assert math.isnan(by_model["m1"].low)
    assert "| m2 | 1 | -12.50 |" in (tmp_path / "r" / "grid.md").read_text()


def test_a_seed_without_its_baseline_is_an_error_naming_model_and_seed(tmp_path: Path) -> None:
    counts = {
        "m1": {
            "opsa": {"harm": 8, "probe": 0},
            "opsa-seed1": {"harm": 8, "probe": 0},
            "offpolicy_sd": {"harm": 4, "probe": 0},
        }
    }
    grid = write_grid(tmp_path, counts)
    with pytest.raises(InputError, match="m1: no 'offpolicy_sd' evaluation for seed 1"):
        write_grid_report(
            grid["paths"],
            tmp_path / "r" / "grid.csv",
            tmp_path / "r" / "grid.md",
            "opsa",
            "offpolicy_sd",
            {},
        )
    assert not (tmp_path / "r" / "grid.md").exists()


@pytest.mark.parametrize(
    ("df", "table"), [(1, 12.7062047), (2, 4.3026527), (4, 2.7764451), (30, 2.0422725)]
)
def test_t_quantile_matches_the_published_table(df: int, table: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(table, abs=1e-6)
