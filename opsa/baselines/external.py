"""The external-teacher baseline's data: another model's (prompt, response) pairs."""

from __future__ import annotations

import logging
import random
from pathlib import Path

from opsa.data.sources import SourceSpec, load_source
from opsa.errors import InputError
from opsa.records import write_jsonl

log = logging.getLogger(__name__)


def external_pairs(
    source: SourceSpec, out_path: str | Path, n: int | None = None, seed: int = 0
) -> None:
    """An external teacher's responses as SFT pairs: any prompt source whose `answer` column
    holds the response (e.g. STAR-1: columns {prompt: question, answer: response}; SafeChain on
    the hub). `n` draws a seeded subsample."""
    rows, _ = load_source(source)
    missing = next((r["id"] for r in rows if not r["answer"]), None)
    if missing is not None:
        raise InputError(f"{source.location}: id {missing}: no response (columns.answer)")
    if n is not None and n < len(rows):
        rows = random.Random(seed).sample(rows, n)
    pairs = [{"id": r["id"], "prompt": r["prompt"], "response": r["answer"]} for r in rows]
    write_jsonl(out_path, pairs)
    log.info("%d external pairs from %s", len(pairs), source.location)
