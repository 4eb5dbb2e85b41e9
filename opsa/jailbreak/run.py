"""Running an attack against one model variant: each attack prompt rendered in the model's chat
template (a prefill inside the assistant turn), one sampled reply per attempt.

The output has the generations file's columns, so the judge step reads it as it is: `prompt`
is the plain behaviour (what the judge weighs the reply against), `sample` the attempt, and
`response` the reply as the user sees it (prefill + continuation); `token_ids` are the
continuation's.
"""

from __future__ import annotations

from pathlib import Path

from opsa.generation.engine import SamplingParams
from opsa.generation.run import generate_rendered
from opsa.models.load import load_tokenizer
from opsa.prompting.chat import render_prefilled
from opsa.records import read_jsonl, require_columns, write_jsonl


def run_attack(
    model_dir: str | Path,
    attacks_path: str | Path,
    out_path: str | Path,
    params: SamplingParams,
    trust_remote_code: bool = False,
) -> None:
    rows = read_jsonl(attacks_path)
    require_columns(rows, ["id", "attempt", "behaviour", "prompt", "prefill"], attacks_path)
    tokenizer = load_tokenizer(model_dir, trust_remote_code)
    texts = [render_prefilled(tokenizer, r["prompt"], r["prefill"]) for r in rows]
    ids = [f"{r['id']}/{r['attempt']}" for r in rows]
    completions = generate_rendered(
        model_dir, tokenizer, ids, texts, params.model_copy(update={"samples": 1}),
        attacks_path, trust_remote_code,
    )  # fmt: skip
    out = [
        {
            "id": row["id"],
            "sample": row["attempt"],
            "prompt": row["behaviour"],
            "attack_prompt": row["prompt"],
            "prefill": row["prefill"],
            "response": row["prefill"] + c.text,
            "token_ids": c.token_ids,
            "finish_reason": c.finish_reason,
        }
        for row, (c,) in zip(rows, completions, strict=True)
    ]
    write_jsonl(out_path, out)
