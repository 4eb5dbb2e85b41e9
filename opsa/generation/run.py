"""The generate stage: a model's responses to a prompt set, with their token ids."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from opsa.generation.backend import open_generator
from opsa.generation.engine import Completion, SamplingParams
from opsa.models.load import load_tokenizer
from opsa.models.max_length import check_prompt_lengths
from opsa.models.runtime import Role
from opsa.prompting.chat import render_user
from opsa.records import read_jsonl, require_columns, write_jsonl

log = logging.getLogger(__name__)


def generate_responses(
    model_dir: str | Path,
    prompts_path: str | Path,
    out_path: str | Path,
    params: SamplingParams,
    trust_remote_code: bool = False,
) -> None:
    rows = read_jsonl(prompts_path)
    require_columns(rows, ["id", "prompt"], prompts_path)
    tokenizer = load_tokenizer(model_dir, trust_remote_code)
    texts = [render_user(tokenizer, row["prompt"]) for row in rows]
    ids = [r["id"] for r in rows]
    completions = generate_rendered(
        model_dir, tokenizer, ids, texts, params, prompts_path, trust_remote_code
    )
    out = []
    for row, samples in zip(rows, completions, strict=True):
        for k, c in enumerate(samples):
            out.append(
                {
                    "id": row["id"],
                    "sample": k,
                    "prompt": row["prompt"],
                    "response": c.text,
                    "token_ids": c.token_ids,
                    "finish_reason": c.finish_reason,
                }
            )
    write_jsonl(out_path, out)


def generate_rendered(
    model_dir: str | Path,
    tokenizer: Any,
    ids: list[str],
    texts: list[str],
    params: SamplingParams,
    source: str | Path,
    trust_remote_code: bool = False,
    role: Role = "policy",
) -> list[list[Completion]]:
    """Completions of rendered prompts read from `source` (named in errors and logs) by the
    model in `role`: their lengths are checked against its context before any engine opens."""
    check_prompt_lengths(model_dir, tokenizer, ids, texts, params.max_new_tokens, source)
    generator = open_generator(model_dir, role, f"generate {Path(source).stem}", trust_remote_code)
    start = time.perf_counter()
    completions = generator.generate(texts, params)
    seconds = time.perf_counter() - start
    tokens = sum(len(c.token_ids) for samples in completions for c in samples)
    log.info(
        "%d responses, %d tokens in %.1f s (%.1f tokens/s)",
        sum(map(len, completions)),
        tokens,
        seconds,
        tokens / max(seconds, 1e-9),
    )
    return completions
