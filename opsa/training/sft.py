"""Supervised fine-tuning on (prompt, response) pairs: the baselines' trainer.

The prompt is the student's chat (no context); the loss is the token-mean negative
log-likelihood of the response tokens (and the stop token), nothing else.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from opsa.distill.sequences import pack
from opsa.errors import InputError
from opsa.models.load import load_tokenizer
from opsa.prompting.chat import render_user
from opsa.records import read_jsonl, require_columns
from opsa.training.chunked import chunked_terms, loss_hidden
from opsa.training.config import SFTConfig
from opsa.training.identity import run_identity
from opsa.training.loop import (
    Run,
    StepStats,
    backward_checked,
    compute_precision,
    global_count,
    start_run,
    train,
)
from opsa.training.token_loss import nll_terms, on_logits

log = logging.getLogger(__name__)
Pair = tuple[list[int], list[int]]  # (prompt ids, response ids)


def train_sft(
    model_dir: str | Path,
    pairs_path: str | Path,
    config: SFTConfig,
    out_dir: str | Path,
    work_dir: str | Path,
) -> None:
    """SFT on the JSONL pairs {id, prompt, response}; out_dir appears only on completion."""
    rows = read_jsonl(pairs_path)
    require_columns(rows, ["id", "prompt", "response"], pairs_path)
    tokenizer = load_tokenizer(model_dir, config.trust_remote_code)
    pairs = encode_pairs(tokenizer, rows, config)
    run = start_run(model_dir, config, len(pairs), work_dir)
    identity = run_identity("sft", config, model_dir, {"pairs": pairs_path})
    train(run, SFTTask(run, tokenizer, pairs), tokenizer, work_dir, out_dir, identity)


def encode_pairs(tokenizer: Any, rows: list[dict[str, Any]], config: SFTConfig) -> list[Pair]:
    """Prompt ids (student chat, no context) and response ids ending with the stop token;
    a response over max_response_tokens is cut (and then has no stop token)."""
    pairs, cut = [], 0
    stop = int(tokenizer.eos_token_id)
    for row in rows:
        prompt = render_user(tokenizer, row["prompt"])
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if len(p_ids) > config.max_prompt_tokens:
            raise InputError(
                f"pair id {row['id']}: prompt has {len(p_ids)} tokens, over max_prompt_tokens"
            )
        r_ids = tokenizer(row["response"], add_special_tokens=False)["input_ids"] + [stop]
        cut += len(r_ids) > config.max_response_tokens
        pairs.append((p_ids, r_ids[: config.max_response_tokens]))
    if cut:
        log.warning(
            "%d of %d responses cut to %d tokens", cut, len(rows), config.max_response_tokens
        )
    return pairs


class SFTTask:
    def __init__(self, run: Run, tokenizer: Any, pairs: list[Pair]) -> None:
        self.run = run
        self.config: SFTConfig = run.config  # type: ignore[assignment]
        self.tokenizer = tokenizer
        self.pairs = pairs

    def backward(self, micro_batches: list[list[int]], step: int) -> StepStats:
        acc = self.run.accelerator
        local = sum(len(self.pairs[i][1]) for mb in micro_batches for i in mb)
        scale = acc.num_processes / max(1, global_count(acc, local))
        loss_sum = 0.0
        for mb in micro_batches:
            # an empty micro-batch (a process short of items) runs a zero-loss stand-in: under
            # DDP every process must join every gradient all-reduce
            part = [self.pairs[i] for i in mb] or self.pairs[:1]
            total = self._loss(part)
            backward_checked(acc, total * (scale if mb else 0.0), step)
            loss_sum += total.item() if mb else 0.0
        return StepStats(loss_sum, local)

    def _loss(self, pairs: list[Pair]) -> torch.Tensor:
        acc, cfg = self.run.accelerator, self.config
        batch = pack([p for p, _ in pairs], [r for _, r in pairs], self.tokenizer.pad_token_id)
        head = acc.unwrap_model(self.run.model).get_output_embeddings()
        with compute_precision(self.run):
            hidden = loss_hidden(self.run.model, batch)
            total, _ = chunked_terms(
                on_logits(nll_terms), head, hidden, batch.targets, cfg.loss_chunk_size
            )
        return total

    def after_optimizer_step(self) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def write_outputs(self, out_dir: Path) -> None:
        return None
