"""The judge stage: one judge over a generations file, written as a judgments file."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from opsa.judges.base import JudgeItem, Verdict
from opsa.judges.spec import JudgeSpec, build_judge
from opsa.records import read_jsonl, require_columns, write_jsonl

log = logging.getLogger(__name__)


def judge_responses(
    generations_path: str | Path,
    out_path: str | Path,
    name: str,
    spec: JudgeSpec,
    model_dir: str | Path | None = None,
) -> None:
    """Judge every (prompt, response) of `generations_path`; one judgment row per generation."""
    rows = read_jsonl(generations_path)
    require_columns(rows, ["id", "sample", "prompt", "response"], generations_path)
    judge = build_judge(name, spec, model_dir)
    items = [JudgeItem(r["prompt"], r["response"], f"{r['id']}/{r['sample']}") for r in rows]
    verdicts = judge.judge(items)
    out = [judgment_row(row, name, v) for row, v in zip(rows, verdicts, strict=True)]
    write_jsonl(out_path, out)
    counts = Counter(str(r["unsafe"]) for r in out)
    log.info("judge '%s' on %s: unsafe %s", name, Path(generations_path).name, dict(counts))


def judgment_row(row: dict[str, Any], judge: str, verdict: Verdict) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sample": row["sample"],
        "judge": judge,
        "refused": verdict.refused,
        "unsafe": verdict.unsafe,
        "score": verdict.score,
        "raw": verdict.raw,
    }
