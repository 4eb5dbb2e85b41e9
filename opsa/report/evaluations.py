"""The evaluation records the reports read: one JSON per model, variant and set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsa.errors import InputError
from opsa.evaluation.metrics import METRICS
from opsa.records import read_json

Record = dict[str, Any]

FIELDS = [
    "model",
    "variant",
    "set",
    "role",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "judge",
    "direction",
]


def read_evaluations(paths: list[Path]) -> list[Record]:
    """The records, checked for their fields and for one record per model, variant and set."""
    records, seen = [], {}
    for path in paths:
        record = read_json(path)
        missing = [f for f in FIELDS if f not in record]
        if missing:
            raise InputError(f"{path}: missing key '{missing[0]}'")
        if record["role"] not in METRICS:
            raise InputError(f"{path}: role '{record['role']}' is not an evaluation role")
        key = (record["model"], record["variant"], record["set"])
        if key in seen:
            raise InputError(f"{path}: {'/'.join(key)} is also in {seen[key]}")
        seen[key] = path
        records.append(record)
    return records
