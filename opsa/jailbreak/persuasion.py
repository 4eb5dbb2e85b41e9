"""The PAP attack (persuasive paraphrase): an attacker model rewrites each behaviour with one
persuasion technique per attempt, from the project's meta-prompts (`persuasion.yaml`); the
paraphrase is then the user turn sent to every model variant. Rows as in `attacks`, plus the
technique."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from opsa.generation.engine import SamplingParams
from opsa.generation.run import generate_rendered
from opsa.jailbreak.attacks import attack_row, pick_behaviours
from opsa.jailbreak.settings import JailbreakSettings
from opsa.models.load import load_tokenizer
from opsa.prompting.chat import render_user
from opsa.records import read_yaml, write_jsonl

log = logging.getLogger(__name__)
META_PROMPTS = Path(__file__).with_name("persuasion.yaml")
THINKING = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)


def meta_prompt(behaviour: str, attempt: int) -> tuple[str, str]:
    """(technique, the attacker's instruction) for one attempt at `behaviour`."""
    spec = read_yaml(META_PROMPTS)
    technique = spec["techniques"][attempt % len(spec["techniques"])]
    instruction = spec["instruction"].format(
        technique=technique["name"], definition=technique["definition"].strip()
    )
    return technique["name"], f"{instruction}\n\nRequest: {behaviour}"


def build_pap(
    prompts_path: str | Path,
    attacker_dir: str | Path,
    settings: JailbreakSettings,
    params: SamplingParams,
    seed: int,
    out_path: str | Path,
    trust_remote_code: bool = False,
) -> None:
    behaviours = pick_behaviours(prompts_path, settings.behaviours, seed)
    asks = [
        (b, k, *meta_prompt(b["prompt"], k)) for b in behaviours for k in range(settings.attempts)
    ]
    tokenizer = load_tokenizer(attacker_dir, trust_remote_code)
    texts = [render_user(tokenizer, ask) for _, _, _, ask in asks]
    ids = [f"{b['id']}/{k}" for b, k, _, _ in asks]
    completions = generate_rendered(
        attacker_dir,
        tokenizer,
        ids,
        texts,
        params.model_copy(update={"samples": 1}),
        prompts_path,
        trust_remote_code,
        role="writer",
    )
    rows, empty = [], 0
    for (b, k, technique, _), (c,) in zip(asks, completions, strict=True):
        paraphrase = clean(c.text)
        empty += not paraphrase
        rows.append(attack_row(b, k, paraphrase or b["prompt"], technique=technique))
    write_jsonl(out_path, rows)
    log.info("pap: %d paraphrases (%d empty, replaced by the behaviour)", len(rows), empty)


def clean(text: str) -> str:
    """The paraphrase without a reasoning model's thinking block, surrounding whitespace or
    quotes."""
    return THINKING.sub("", text).strip().strip('"').strip()
