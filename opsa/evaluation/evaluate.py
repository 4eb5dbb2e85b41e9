"""The evaluate stage: one model's metric on one evaluation set, with a bootstrap interval."""

from __future__ import annotations

import logging
from pathlib import Path

from opsa.errors import InputError
from opsa.evaluation.bootstrap import (
    bootstrap_replicates,
    percentile_interval,
    stable_seed,
)
from opsa.evaluation.code_exec import ExecLimits
from opsa.evaluation.code_grading import executed_items
from opsa.evaluation.metrics import (
    graded_items,
    index_generations,
    index_prompts,
    judged_values,
    kept_keys,
    metric_for,
)
from opsa.evaluation.programs import CODE_TYPES
from opsa.records import read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

LEVEL = 0.95


def evaluate_set(
    role: str,
    prompts_path: str | Path,
    generations_path: str | Path,
    judgments_path: str | Path | None,
    out_path: str | Path,
    model: str,
    variant: str,
    set_name: str,
    answer_type: str | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    items_path: str | Path | None = None,
    code_limits: ExecLimits | None = None,
    training_seed: int | None = None,
) -> dict:
    """Score a set and write its JSON record (and, with `items_path`, one JSONL row per item).

    The record keeps the bootstrap replicate means, so the report can put intervals on
    composites of several sets, and a trained variant's `training_seed`, so the report can
    pair variants by seed. Intervals resample prompts, not samples. Code sets
    (`answer_type` humaneval or mbpp) run every generation's program under `code_limits`.
    """
    metric = metric_for(role)
    prompts = index_prompts(read_jsonl(prompts_path), prompts_path)
    generations = index_generations(
        read_jsonl(generations_path), prompts, generations_path, prompts_path
    )
    keys = kept_keys(generations, prompts, metric, prompts_path)
    if not keys:
        raise InputError(f"{prompts_path}: no prompt has label '{metric.label}' for {role}")
    name = metric.name
    if metric.verdict is None and answer_type in CODE_TYPES:
        limits = code_limits or ExecLimits()
        items = executed_items(keys, generations, prompts, answer_type, prompts_path, limits)
        judge, name = f"tests:{answer_type}", "pass@1"
    elif metric.verdict is None:
        items = graded_items(keys, generations, prompts, str(answer_type), prompts_path)
        judge = f"answer:{answer_type}"
    else:
        if judgments_path is None:
            raise InputError(f"{set_name}: role {role} needs a judgments file")
        values, judge = judged_values(
            keys, generations, read_jsonl(judgments_path), metric.verdict, judgments_path
        )
        items = [
            {"id": pid, "sample": sample, "value": value}
            for (pid, sample), value in zip(keys, values, strict=True)
        ]
    values = [item["value"] for item in items]
    ids = [str(item["id"]) for item in items]
    replicates = bootstrap_replicates(values, ids, bootstrap, stable_seed(seed, set_name))
    interval = percentile_interval(sum(values) / len(values), replicates, len(values), LEVEL)
    record = {
        "model": model,
        "variant": variant,
        "set": set_name,
        "role": role,
        "metric": name,
        "value": interval.mean,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "n": interval.n,
        "n_prompts": len(set(ids)),
        "judge": judge,
        "direction": metric.direction,
        "bootstrap": {"replicates": bootstrap, "seed": seed, "level": LEVEL, "unit": "prompt"},
        "replicate_means": [round(float(r), 6) for r in replicates],
    }
    if training_seed is not None:
        record["training_seed"] = training_seed
    write_json(out_path, record)
    if items_path is not None:
        write_jsonl(items_path, items)
    log.info(
        "%s %s/%s %s = %.4f [%.4f, %.4f] (n=%d, judge %s)",
        set_name,
        model,
        variant,
        name,
        interval.mean,
        interval.low,
        interval.high,
        interval.n,
        judge,
    )
    return record
