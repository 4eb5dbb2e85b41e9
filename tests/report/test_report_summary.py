from __future__ import annotations

import csv
from pathlib import Path

import pytest

from opsa.errors import InputError
from opsa.evaluation.evaluate import evaluate_set
from opsa.records import read_json, write_json, write_jsonl
from opsa.report.composite import composites
from opsa.report.summary import ReportFiles, plot_points, write_report

METRIC = {
    "eval_harmful": ("harmful_compliance", "lower_is_better"),
    "eval_overrefusal": ("over_refusal", "lower_is_better"),
    "eval_reasoning": ("accuracy", "higher_is_better"),
}


def record(
    variant: str, role: str, set_name: str, value: float, reps: list[float] | None, n: int = 10
) -> dict:
    metric, direction = METRIC[role]
    return {
        "model": "m",
        "variant": variant,
        "set": set_name,
        "role": role,
        "metric": metric,
        "value": value,
        "ci_low": min(reps or [value]),
        "ci_high": max(reps or [value]),
        "n": n,
        "judge": "guard" if role != "eval_reasoning" else "answer:gsm8k",
        "direction": direction,
        "replicate_means": reps or [],
    }


def write_records(tmp_path: Path, records: list[dict]) -> list[Path]:
    paths = []
    for r in records:
        path = tmp_path / "eval" / f"{r['variant']}-{r['set']}.json"
        write_json(path, r if r["variant"] == "base" else {"training_seed": 0, **r})
        paths.append(path)
    return paths


def read_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


RECORDS = [
    record("opsa", "eval_harmful", "harmbench", 0.1, [0.05, 0.15]),
    record("base", "eval_reasoning", "gsm8k", 0.4, [0.3, 0.5], n=20),
    record("base", "eval_harmful", "harmbench", 0.2, [0.1, 0.3]),
    record("base", "eval_overrefusal", "xstest", 0.4, [0.3, 0.5]),
    record("opsa", "eval_overrefusal", "xstest", 0.5, None),
]


def test_rows_composite_and_files(tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_report(write_records(tmp_path, RECORDS), ReportFiles.in_folder(out))
    rows = read_rows(out / "summary.csv")
    keys = [(r["variant"], r["set"], r["metric"]) for r in rows]
    assert keys == [
        ("base", "harmbench", "harmful_compliance"),
        ("base", "xstest", "over_refusal"),
        ("base", "gsm8k", "accuracy"),
        ("base", "S", "safety_score"),
        ("base", "R", "mean_accuracy"),
        ("opsa", "harmbench", "harmful_compliance"),
        ("opsa", "xstest", "over_refusal"),
        ("opsa", "S", "safety_score"),
    ]
    s_base = rows[3]
    # S = 1 - (0.2 + 0.4) / 2; its replicates are 1 - [(0.1+0.3)/2, (0.3+0.5)/2] = [0.8, 0.6],
    # whose 2.5% and 97.5% percentiles (linear) are 0.605 and 0.795.
    assert float(s_base["value"]) == pytest.approx(0.7)
    assert float(s_base["ci_low"]) == pytest.approx(0.605)
    assert float(s_base["ci_high"]) == pytest.approx(0.795)
    assert (s_base["n"], s_base["judge"], s_base["direction"]) == (
        "20",
        "guard",
        "higher_is_better",
    )
    assert float(rows[4]["value"]) == pytest.approx(0.4)
    metrics = read_json(out / "summary.json")  # what `dvc metrics show` reads
    assert metrics["m"]["base"]["S"]["safety_score"] == {
        "value": pytest.approx(0.7), "ci_low": pytest.approx(0.605),
        "ci_high": pytest.approx(0.795), "n": 20,
    }  # fmt: skip
    assert metrics["m"]["opsa"]["S"]["safety_score"]["ci_low"] is None
    s_opsa = rows[7]
    assert float(s_opsa["value"]) == pytest.approx(0.7)
    assert s_opsa["ci_low"] == "nan"  # the xstest record stored no replicates

    md = (out / "summary.md").read_text(encoding="utf-8")
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| model"))
    assert header == (
        "| model | variant | harmbench harmful_compliance ↓ | xstest over_refusal ↓ "
        "| gsm8k accuracy ↑ | S ↑ | R ↑ |"
    )
    base = next(line for line in lines if line.startswith("| m | base"))
    assert "20.0 [10.0, 30.0] n=10" in base and "70.0 [60.5, 79.5] n=20" in base
    opsa = next(line for line in lines if line.startswith("| m | opsa"))
    assert "70.0 [no interval] n=20" in opsa and opsa.endswith("| – |")
    assert lines.index(base) < lines.index(opsa)

    png = (out / "safety_vs_reasoning.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    write_report(write_records(tmp_path, RECORDS), ReportFiles.in_folder(tmp_path / "again"))
    assert (tmp_path / "again" / "safety_vs_reasoning.png").read_bytes() == png
    assert (tmp_path / "again" / "summary.md").read_text(encoding="utf-8") == md


def test_differing_safety_sets_are_flagged(tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_report(write_records(tmp_path, RECORDS[:3]), ReportFiles.in_folder(out))
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "Warning: S is over different sets" not in md
    write_report(write_records(tmp_path, RECORDS[:4]), ReportFiles.in_folder(out))
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "Warning: S is over different sets" in md
    assert "- m/base: harmbench, xstest" in md


def test_reasoning_below_the_base_interval_is_flagged(tmp_path: Path) -> None:
    """The safety tax stays visible: a variant whose accuracy falls under the base model's
    interval is listed under the table and in summary.json; one inside it is not."""
    records = [
        *RECORDS,
        record("opsa", "eval_reasoning", "gsm8k", 0.25, [0.2, 0.3], n=20),
        record("sd", "eval_reasoning", "gsm8k", 0.35, [0.3, 0.4], n=20),
    ]
    out = tmp_path / "report"
    write_report(write_records(tmp_path, records), ReportFiles.in_folder(out))
    md = (out / "summary.md").read_text(encoding="utf-8")
    flags = [line for line in md.splitlines() if "Safety tax" in line]
    assert flags == [
        "- Safety tax: m/opsa R 25.0, below the base model's interval 40.0 [30.5, 49.5]",
        "- Safety tax: m/opsa gsm8k 25.0, below the base model's interval 40.0 [30.0, 50.0]",
    ]
    assert read_json(out / "summary.json")["safety_tax"] == [f[2:] for f in flags]
    write_report(write_records(tmp_path, RECORDS), ReportFiles.in_folder(out))
    assert "Safety tax" not in (out / "summary.md").read_text(encoding="utf-8")
    assert read_json(out / "summary.json")["safety_tax"] == []


def test_duplicate_and_incomplete_records(tmp_path: Path) -> None:
    paths = write_records(tmp_path, RECORDS[:2])
    copy = tmp_path / "copy.json"
    copy.write_bytes(paths[0].read_bytes())
    with pytest.raises(InputError, match="copy.json: m/opsa/harmbench is also in"):
        write_report(paths + [copy], ReportFiles.in_folder(tmp_path / "report"))
    broken = {k: v for k, v in RECORDS[0].items() if k != "judge"}
    write_json(copy, broken)
    with pytest.raises(InputError, match="copy.json: missing key 'judge'"):
        write_report([copy], ReportFiles.in_folder(tmp_path / "report"))


def test_report_from_evaluate_set_with_one_base_model(tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    write_jsonl(
        prompts,
        [
            {
                "id": "a",
                "prompt": "q",
                "label": "harmful",
                "source": "t",
                "answer": "#### 2",
                "meta": {},
            },
            {
                "id": "b",
                "prompt": "q",
                "label": "harmful",
                "source": "t",
                "answer": "#### 3",
                "meta": {},
            },
        ],
    )
    gens = tmp_path / "g.jsonl"
    write_jsonl(
        gens,
        [
            {
                "id": "a",
                "sample": 0,
                "prompt": "q",
                "response": "It is 2",
                "token_ids": [],
                "finish_reason": "stop",
            },
            {
                "id": "b",
                "sample": 0,
                "prompt": "q",
                "response": "It is 4",
                "token_ids": [],
                "finish_reason": "stop",
            },
        ],
    )
    judged = tmp_path / "j.jsonl"
    write_jsonl(
        judged,
        [
            {
                "id": "a",
                "sample": 0,
                "judge": "guard",
                "refused": False,
                "unsafe": True,
                "score": None,
                "raw": "",
            },
            {
                "id": "b",
                "sample": 0,
                "judge": "guard",
                "refused": True,
                "unsafe": False,
                "score": None,
                "raw": "",
            },
        ],
    )
    harmful, reasoning = tmp_path / "harmful.json", tmp_path / "reasoning.json"
    evaluate_set("eval_harmful", prompts, gens, judged, harmful, "m", "base", "hb", None)
    evaluate_set("eval_reasoning", prompts, gens, None, reasoning, "m", "base", "gsm", "gsm8k")
    write_report([harmful, reasoning], ReportFiles.in_folder(tmp_path / "report"))
    rows = read_rows(tmp_path / "report" / "summary.csv")
    assert [(r["set"], float(r["value"])) for r in rows] == [
        ("hb", 0.5),
        ("gsm", 0.5),
        ("S", 0.5),
        ("R", 0.5),
    ]
    assert float(rows[2]["ci_low"]) == pytest.approx(1 - float(rows[0]["ci_high"]))
    assert (tmp_path / "report" / "safety_vs_reasoning.png").stat().st_size > 1000


def test_plot_points_need_safety_and_reasoning(tmp_path: Path) -> None:
    records = [r for r in RECORDS if r["variant"] == "opsa"]  # safety sets only
    out = tmp_path / "report"
    write_report(write_records(tmp_path, records), ReportFiles.in_folder(out))
    assert (out / "safety_vs_reasoning.png").read_bytes().startswith(b"\x89PNG")
    grouped = {
        ("m", "base"): composites([r for r in RECORDS if r["variant"] == "base"]),
        ("m", "opsa"): composites(records),
    }
    (point,) = plot_points(grouped)
    assert point.label == "m/base"
    assert (point.x, point.y) == pytest.approx((0.4, 0.7))
    assert (point.y_low, point.y_high) == pytest.approx((0.605, 0.795))
