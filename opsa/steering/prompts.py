"""The prompt texts of a prepared prompt set (JSONL rows with `id` and `prompt`)."""

from __future__ import annotations

from pathlib import Path

from opsa.records import read_jsonl, require_columns


def prompt_texts(path: str | Path, limit: int | None = None) -> list[str]:
    """The first `limit` prompts of the set (all when None); an empty set is an InputError."""
    rows = read_jsonl(path)
    require_columns(rows, ["id", "prompt"], path)
    return [row["prompt"] for row in rows[:limit]]
