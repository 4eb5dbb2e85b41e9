"""Training inputs: labelled prompts, the selected contexts, and the seeded order of batches."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from opsa.errors import InputError
from opsa.prompting.placement import Context
from opsa.records import read_json, read_jsonl, require_columns


@dataclass(frozen=True)
class PromptItem:
    id: str
    prompt: str
    label: str  # "harmful" | "benign"


def load_labelled_prompts(harmful_path: str | Path, benign_path: str | Path) -> list[PromptItem]:
    """Harmful and benign prompts together; either set empty, or a row labelled against its
    file, is an InputError."""
    return load_prompt_set(harmful_path, "harmful") + load_prompt_set(benign_path, "benign")


def load_prompt_set(path: str | Path, label: str) -> list[PromptItem]:
    """One labelled prompt set; empty, or a row labelled against its file, is an InputError."""
    rows = read_jsonl(path)
    if not rows:
        raise InputError(f"{path}: no {label} prompts")
    require_columns(rows, ["id", "prompt"], path)
    for row in rows:
        if row.get("label", label) != label:
            raise InputError(
                f"{path}: row id {row['id']} is labelled '{row['label']}', expected '{label}'"
            )
    return [PromptItem(str(row["id"]), row["prompt"], label) for row in rows]


def load_selected_contexts(path: str | Path) -> tuple[Context, Context | None]:
    """(c_h, c_b) from the context search's selection; c_b may be null (no benign context)."""
    data = read_json(path)
    if not isinstance(data, dict) or not data.get("harmful"):
        raise InputError(f"{path}: needs a 'harmful' context row")
    try:
        harmful = Context.from_row(data["harmful"])
        benign = Context.from_row(data["benign"]) if data.get("benign") else None
    except KeyError as e:
        raise InputError(f"{path}: a context row lacks key {e}") from None
    return harmful, benign


def batch_schedule(
    num_items: int,
    batch_size: int,
    epochs: int,
    seed: int,
    drop_last: bool = False,
    fraction: float = 1.0,
) -> list[list[int]]:
    """Item indices of every optimiser step: each epoch a fresh seeded shuffle of the items
    (harmful and benign mixed), cut into batches; an epoch's last batch may be smaller, or is
    dropped with `drop_last`. With `fraction` < 1 only a seeded share of the items is used,
    the same for every seed and nested (the items of 10% are among those of 25%)."""
    kept = list(range(num_items))
    random.Random(num_items).shuffle(kept)
    kept = sorted(kept[: max(1, round(fraction * num_items))]) if num_items else []
    batches = []
    for epoch in range(epochs):
        order = list(kept)
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        batches += [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if drop_last and len(batches[-1]) < batch_size:
            batches.pop()
    if not batches:
        raise InputError(f"{len(kept)} items make no full batch of {batch_size}")
    return batches
