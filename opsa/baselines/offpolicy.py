"""The off-policy self-distillation baseline's data (ThinkSafe-style).

The frozen base model answers harmful prompts with c_h and benign prompts with c_b (or no
context); harmful-prompt responses the judge calls unsafe are dropped; the pairs keep the prompt
without any context, so SFT on them trains the plain chat.
"""

from __future__ import annotations

import logging
from pathlib import Path

from opsa.errors import InputError
from opsa.generation.backend import open_generator
from opsa.generation.engine import SamplingParams
from opsa.judges.base import Judge, JudgeItem
from opsa.prompting.placement import render_prompt
from opsa.prompting.sets import load_labelled_prompts, load_selected_contexts
from opsa.records import write_jsonl

log = logging.getLogger(__name__)


def build_offpolicy_pairs(
    model_dir: str | Path,
    harmful_path: str | Path,
    benign_path: str | Path,
    selected_contexts_path: str | Path,
    judge: Judge,
    sampling: SamplingParams,
    out_path: str | Path,
    trust_remote_code: bool = False,
    filter_unsafe: bool = True,
) -> None:
    """Write JSONL pairs {id, prompt, response, label, context_id, judge} for `train_sft`;
    without `filter_unsafe`, unsafe responses are kept too (the filter's own effect)."""
    items = load_labelled_prompts(harmful_path, benign_path)
    c_h, c_b = load_selected_contexts(selected_contexts_path)
    contexts = {"harmful": c_h, "benign": c_b}
    generator = open_generator(model_dir, "teacher", "off-policy teacher", trust_remote_code)
    texts = [render_prompt(generator.tokenizer, it.prompt, contexts[it.label]) for it in items]
    completions = generator.generate(texts, sampling)
    rows = []
    for item, samples in zip(items, completions, strict=True):
        ctx = contexts[item.label]
        for k, c in enumerate(samples):
            if c.text.strip():
                rows.append(
                    {
                        "id": item.id if sampling.samples == 1 else f"{item.id}-{k}",
                        "prompt": item.prompt,
                        "response": c.text,
                        "label": item.label,
                        "context_id": ctx.id if ctx else None,
                        "finish_reason": c.finish_reason,
                        "judge": judge.name,
                    }
                )
    if filter_unsafe:
        kept = _drop_unsafe(rows, judge)
    else:
        kept = rows
        log.info("off-policy pairs: no filter, %d pairs kept", len(rows))
    if not kept:
        raise InputError(f"{harmful_path}: no usable off-policy pairs (all empty or unsafe)")
    write_jsonl(out_path, kept)


def _drop_unsafe(rows: list[dict], judge: Judge) -> list[dict]:
    harmful = [r for r in rows if r["label"] == "harmful"]
    verdicts = judge.judge([JudgeItem(r["prompt"], r["response"], r["id"]) for r in harmful])
    if any(v.unsafe is None for v in verdicts):
        raise InputError(f"judge '{judge.name}' gave no unsafe verdict; it cannot filter pairs")
    unsafe = {id(r) for r, v in zip(harmful, verdicts, strict=True) if v.unsafe}
    log.info(
        "off-policy pairs: dropped %d of %d harmful responses as unsafe (judge %s)",
        len(unsafe),
        len(harmful),
        judge.name,
    )
    return [r for r in rows if id(r) not in unsafe]
