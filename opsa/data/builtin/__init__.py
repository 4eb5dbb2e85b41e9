"""Prompt sets the project ships (benign instructions, borderline benign requests, over-refusal
probes, numeric facts) or generates (arithmetic questions). Provenance of the shipped files:
README.txt beside this module."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Literal

BuiltinName = Literal["benign", "borderline", "overrefusal", "facts", "arithmetic"]
GENERATED = ("arithmetic",)
DEFAULT_SIZE = 500
HERE = Path(__file__).parent


def load(name: BuiltinName, size: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Raw rows of a builtin set; `size` and `seed` shape the generated ones."""
    if name == "arithmetic":
        return arithmetic(size or DEFAULT_SIZE, seed)
    with (HERE / f"{name}.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def arithmetic(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` distinct questions like "What is 23 + 58?" with the number as answer.

    Operands have one or two digits (even odds); subtraction never goes below zero, and a
    product has at least one one-digit factor, so a small instruct model is neither at floor
    nor at ceiling. The same (n, seed) always gives the same questions in the same order.
    """
    rng = random.Random(f"arithmetic-{seed}")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(rows) < n:
        op = rng.choice("+-*")
        a, b = _operand(rng), _operand(rng)
        if op == "-" and a < b:
            a, b = b, a
        if op == "*" and a > 9 and b > 9:
            b = rng.randint(2, 9)
        prompt = f"What is {a} {op} {b}?"
        if prompt in seen:
            continue
        seen.add(prompt)
        value = a + b if op == "+" else a - b if op == "-" else a * b
        rows.append({"prompt": prompt, "answer": str(value), "operation": op})
    return rows


def _operand(rng: random.Random) -> int:
    """One or two digits, each half the time."""
    return rng.randint(1, 9) if rng.random() < 0.5 else rng.randint(10, 99)
