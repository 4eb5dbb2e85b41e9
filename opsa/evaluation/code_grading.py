"""Per-item scores of a code set: each generation's program run against the item's tests.

pass@1 is the mean of these 0/1 values over (item, sample): with one greedy sample per item,
the fraction of items whose first program passes; with n samples, the unbiased pass@1 estimate
(the mean over samples), as for the other reasoning sets.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from opsa.data.prepare import TEST_COLUMNS
from opsa.errors import InputError
from opsa.evaluation.code_exec import ExecLimits, run_program, sandbox
from opsa.evaluation.programs import checking_program

log = logging.getLogger(__name__)

Row = dict[str, Any]


def executed_items(
    keys: list[tuple[str, int]],
    generations: dict[tuple[str, int], Row],
    prompts: dict[str, Row],
    answer_type: str,
    prompts_path: str | Path,
    limits: ExecLimits,
) -> list[Row]:
    """Each kept generation's program run once: its status, why it failed, and its time."""
    for pid in {key[0] for key in keys}:
        meta = prompts[pid].get("meta") or {}
        missing = [c for c in TEST_COLUMNS[answer_type] if c not in meta]
        if missing:
            raise InputError(
                f"{prompts_path}: id {pid}: meta has no '{missing[0]}' (answer_type {answer_type})"
            )
    box = sandbox()
    log.info(
        "running %d programs with %s as %s, network %s, limits %s",
        len(keys),
        box.python,
        box.user,
        "isolated" if box.network_isolated else "NOT isolated (no user namespaces)",
        limits.model_dump(),
    )
    items = []
    for pid, sample in keys:
        response = generations[(pid, sample)]["response"]
        result = run_program(checking_program(answer_type, response, prompts[pid]["meta"]), limits)
        items.append(
            {
                "id": pid,
                "sample": sample,
                "value": float(result.status == "passed"),
                "status": result.status,
                "detail": result.detail,
                "seconds": round(result.seconds, 3),
            }
        )
    log.info("outcomes: %s", dict(Counter(item["status"] for item in items)))
    return items
