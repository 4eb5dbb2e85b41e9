from __future__ import annotations

from pathlib import Path

import pytest

from opsa.errors import InputError
from opsa.evaluation.evaluate import evaluate_set
from opsa.records import read_json, read_jsonl, write_jsonl


def prompt(pid: str, label: str, answer: str | None = None) -> dict:
    return {
        "id": pid,
        "prompt": f"question {pid}",
        "label": label,
        "source": "test",
        "answer": answer,
        "meta": {},
    }


def generation(pid: str, sample: int, response: str = "a response") -> dict:
    return {
        "id": pid,
        "sample": sample,
        "prompt": f"question {pid}",
        "response": response,
        "token_ids": [1, 2],
        "finish_reason": "stop",
    }


def judgment(pid: str, sample: int, refused: bool | None, unsafe: bool | None) -> dict:
    return {
        "id": pid,
        "sample": sample,
        "judge": "guard",
        "refused": refused,
        "unsafe": unsafe,
        "score": None,
        "raw": "",
    }


def files(tmp_path: Path, prompts: list, generations: list, judgments: list | None) -> tuple:
    paths = tmp_path / "prompts.jsonl", tmp_path / "gen.jsonl", tmp_path / "judged.jsonl"
    write_jsonl(paths[0], prompts)
    write_jsonl(paths[1], generations)
    if judgments is not None:
        write_jsonl(paths[2], judgments)
    return paths


HARMFUL = [prompt("h1", "harmful"), prompt("h2", "harmful"), prompt("b1", "benign")]
HARMFUL_GEN = [generation("h1", 0), generation("h1", 1), generation("h2", 0), generation("b1", 0)]
HARMFUL_JUDGED = [
    judgment("h1", 0, False, True),
    judgment("h1", 1, True, False),
    judgment("h2", 0, False, True),
    judgment("b1", 0, False, True),
]


def run(tmp_path: Path, role: str, paths: tuple, answer_type: str | None = None, **kw) -> dict:
    judged = paths[2] if paths[2].exists() else None
    out = tmp_path / "eval.json"
    evaluate_set(
        role,
        paths[0],
        paths[1],
        judged,
        out,
        "smollm2-135m",
        "base",
        "tiny",
        answer_type,
        bootstrap=200,
        seed=0,
        **kw,
    )
    return read_json(out)


def test_harmful_compliance_counts_harmful_prompts_only(tmp_path: Path) -> None:
    record = run(tmp_path, "eval_harmful", files(tmp_path, HARMFUL, HARMFUL_GEN, HARMFUL_JUDGED))
    assert record["metric"] == "harmful_compliance"
    assert record["value"] == pytest.approx(2 / 3)
    assert (record["n"], record["n_prompts"]) == (3, 2)
    assert record["direction"] == "lower_is_better"
    assert record["judge"] == "guard"
    assert (record["model"], record["variant"], record["set"], record["role"]) == (
        "smollm2-135m",
        "base",
        "tiny",
        "eval_harmful",
    )
    assert record["ci_low"] <= record["value"] <= record["ci_high"]
    assert len(record["replicate_means"]) == 200


def test_over_refusal_counts_benign_prompts_only(tmp_path: Path) -> None:
    prompts = [
        prompt("x1", "benign"),
        prompt("x2", "benign"),
        prompt("x3", "benign"),
        prompt("u1", "harmful"),
    ]
    gens = [generation(p["id"], 0) for p in prompts]
    judged = [
        judgment("x1", 0, True, False),
        judgment("x2", 0, False, False),
        judgment("x3", 0, False, False),
        judgment("u1", 0, True, None),
    ]
    record = run(tmp_path, "eval_overrefusal", files(tmp_path, prompts, gens, judged))
    assert record["metric"] == "over_refusal"
    assert record["value"] == pytest.approx(1 / 3)
    assert record["n"] == 3
    assert record["direction"] == "lower_is_better"


def test_gsm8k_accuracy_with_items(tmp_path: Path) -> None:
    prompts = [
        prompt("g1", "benign", "6 * 200 = 1200\n#### 1,200"),
        prompt("g2", "benign", "#### 7"),
        prompt("g3", "benign", "#### -3"),
    ]
    gens = [
        generation("g1", 0, "So she pays $1,200."),
        generation("g1", 1, "I think 1100"),
        generation("g2", 0, "The answer is 7. Then 7 + 1 = 8"),
        generation("g3", 0, "The result is 3."),
    ]
    items = tmp_path / "items.jsonl"
    record = run(
        tmp_path, "eval_reasoning", files(tmp_path, prompts, gens, None), "gsm8k", items_path=items
    )
    assert record["metric"] == "accuracy"
    assert record["value"] == pytest.approx(2 / 4)
    assert (record["n"], record["n_prompts"]) == (4, 3)
    assert record["direction"] == "higher_is_better"
    assert record["judge"] == "answer:gsm8k"
    rows = read_jsonl(items)
    assert [(r["id"], r["sample"], r["value"], r["extracted"]) for r in rows] == [
        ("g1", 0, 1.0, "1200"),
        ("g1", 1, 0.0, "1100"),
        ("g2", 0, 1.0, "7"),
        ("g3", 0, 0.0, "3"),
    ]


def test_math_accuracy(tmp_path: Path) -> None:
    prompts = [prompt("m1", "benign", r"\frac{1}{2}"), prompt("m2", "benign", r"(3, \pi)")]
    gens = [
        generation("m1", 0, r"so $\boxed{0.5}$"),
        generation("m2", 0, r"\boxed{(3,\pi)}"),
        generation("m2", 1, r"\boxed{(\pi, 3)}"),
        generation("m2", 2, "(3, pi) unboxed"),
    ]
    record = run(tmp_path, "eval_reasoning", files(tmp_path, prompts, gens, None), "math")
    assert record["value"] == pytest.approx(2 / 4)


def test_multiple_choice_mean_pass_at_1_over_samples(tmp_path: Path) -> None:
    prompts = [prompt("g1", "benign", "B"), prompt("g2", "benign", "D")]
    gens = [
        generation("g1", 0, "...\nAnswer: B"),
        generation("g1", 1, "Answer: C"),
        generation("g2", 0, "so \\boxed{D}"),
        generation("g2", 1, "I cannot tell"),
    ]
    record = run(tmp_path, "eval_reasoning", files(tmp_path, prompts, gens, None), "choice")
    assert record["value"] == pytest.approx(2 / 4) and record["judge"] == "answer:choice"


def one_line_error(tmp_path: Path, role: str, paths: tuple, answer_type: str | None = None) -> str:
    with pytest.raises(InputError) as caught:
        run(tmp_path, role, paths, answer_type)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_generation_id_not_in_prompts(tmp_path: Path) -> None:
    paths = files(tmp_path, HARMFUL, HARMFUL_GEN + [generation("zz", 0)], HARMFUL_JUDGED)
    message = one_line_error(tmp_path, "eval_harmful", paths)
    assert "gen.jsonl" in message and "zz" in message


def test_prompt_without_generation(tmp_path: Path) -> None:
    paths = files(tmp_path, HARMFUL + [prompt("h3", "harmful")], HARMFUL_GEN, HARMFUL_JUDGED)
    message = one_line_error(tmp_path, "eval_harmful", paths)
    assert "gen.jsonl" in message and "h3" in message


def test_missing_judgment(tmp_path: Path) -> None:
    paths = files(tmp_path, HARMFUL, HARMFUL_GEN, HARMFUL_JUDGED[1:])
    message = one_line_error(tmp_path, "eval_harmful", paths)
    assert "judged.jsonl" in message and "h1 sample 0" in message


def test_judgment_without_generation(tmp_path: Path) -> None:
    paths = files(tmp_path, HARMFUL, HARMFUL_GEN, HARMFUL_JUDGED + [judgment("h2", 5, 0, 1)])
    message = one_line_error(tmp_path, "eval_harmful", paths)
    assert "judged.jsonl" in message and "h2 sample 5" in message


def test_null_verdict_where_a_bool_is_needed(tmp_path: Path) -> None:
    judged = [judgment("h1", 0, False, None)] + HARMFUL_JUDGED[1:]
    message = one_line_error(
        tmp_path, "eval_harmful", files(tmp_path, HARMFUL, HARMFUL_GEN, judged)
    )
    assert "judged.jsonl" in message and "'unsafe'" in message and "h1" in message


def test_several_judges_are_not_mixed(tmp_path: Path) -> None:
    judged = [{**HARMFUL_JUDGED[0], "judge": "other"}] + HARMFUL_JUDGED[1:]
    message = one_line_error(
        tmp_path, "eval_harmful", files(tmp_path, HARMFUL, HARMFUL_GEN, judged)
    )
    assert "several judges" in message


def test_bad_label_and_missing_answer(tmp_path: Path) -> None:
    prompts = [
        prompt("h1", "harmful"),
        {**prompt("h2", "harmful"), "label": None},
        prompt("b1", "benign"),
    ]
    message = one_line_error(
        tmp_path, "eval_harmful", files(tmp_path, prompts, HARMFUL_GEN, HARMFUL_JUDGED)
    )
    assert "prompts.jsonl" in message and "h2" in message
    prompts = [prompt("g1", "benign", "#### 4"), prompt("g2", "benign", None)]
    gens = [generation("g1", 0), generation("g2", 0)]
    message = one_line_error(
        tmp_path, "eval_reasoning", files(tmp_path, prompts, gens, None), "gsm8k"
    )
    assert "prompts.jsonl" in message and "g2" in message and "'answer'" in message


def test_unknown_role_and_answer_type(tmp_path: Path) -> None:
    paths = files(tmp_path, HARMFUL, HARMFUL_GEN, HARMFUL_JUDGED)
    assert "eval_other" in one_line_error(tmp_path, "eval_other", paths)
    prompts = [prompt("g1", "benign", "4")]
    paths = files(tmp_path, prompts, [generation("g1", 0)], None)
    assert "code" in one_line_error(tmp_path, "eval_reasoning", paths, "code")
