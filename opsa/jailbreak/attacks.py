"""Attack prompts, one row per behaviour and attempt:

- prefilling: the behaviour as the user turn, and an affirmative opening placed inside the
  assistant turn (the behaviour's own `meta.target` when the set has one, else the k-th of the
  generic prefixes) which the model continues;
- templates: a human-written jailbreak prompt with the behaviour put in place of its marker;
  the same seeded choice of `attempts` templates for every behaviour.

Rows: id (the behaviour's), attempt, behaviour (the plain request, which the judge sees),
prompt (the user turn sent), prefill (the assistant-turn opening, "" for none).
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

from opsa.data.sources import package_file
from opsa.errors import InputError
from opsa.jailbreak.settings import Attack, JailbreakSettings
from opsa.records import read_jsonl, read_text, require_columns, write_jsonl

log = logging.getLogger(__name__)
Row = dict[str, Any]


def build_attacks(
    prompts_path: str | Path,
    attack: Attack,
    settings: JailbreakSettings,
    seed: int,
    out_path: str | Path,
) -> None:
    behaviours = pick_behaviours(prompts_path, settings.behaviours, seed)
    if attack == "prefilling":
        rows = prefilling(behaviours, settings)
    else:
        templates = pick_templates(settings, seed)
        rows = templated(behaviours, templates, settings.marker)
    write_jsonl(out_path, rows)
    log.info("%s: %d behaviours x %d attempts", attack, len(behaviours), settings.attempts)


def pick_behaviours(prompts_path: str | Path, n: int | None, seed: int) -> list[Row]:
    """A seeded subset of `n` behaviours of the set (all of them when `n` is None), in order."""
    rows = read_jsonl(prompts_path)
    require_columns(rows, ["id", "prompt"], prompts_path)
    if n is None or n >= len(rows):
        return rows
    keep = set(random.Random(seed).sample(range(len(rows)), n))
    return [row for k, row in enumerate(rows) if k in keep]


def prefilling(behaviours: list[Row], settings: JailbreakSettings) -> list[Row]:
    rows = []
    for b in behaviours:
        target = (b.get("meta") or {}).get("target")
        for k in range(settings.attempts):
            prefix = target if target else settings.prefixes[k % len(settings.prefixes)]
            rows.append(attack_row(b, k, b["prompt"], prefix))
    return rows


def templated(behaviours: list[Row], templates: list[str], marker: str) -> list[Row]:
    return [
        attack_row(b, k, template.replace(marker, b["prompt"]))
        for b in behaviours
        for k, template in enumerate(templates)
    ]


def pick_templates(settings: JailbreakSettings, seed: int) -> list[str]:
    """A seeded choice of `attempts` templates among those of the file that hold the marker."""
    location = settings.templates
    path = (
        package_file(location.removeprefix("package:"))
        if location.startswith("package:")
        else Path(location)
    )
    try:
        templates = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
        raise InputError(f"{path}: expected a JSON list of jailbreak prompts (strings)")
    usable = [t for t in templates if settings.marker in t]
    if len(usable) < settings.attempts:
        raise InputError(
            f"{path}: {len(usable)} templates hold the marker {settings.marker!r}, "
            f"fewer than analysis.jailbreak.attempts ({settings.attempts})"
        )
    return random.Random(seed).sample(usable, settings.attempts)


def attack_row(behaviour: Row, attempt: int, prompt: str, prefill: str = "", **extra: Any) -> Row:
    """One attempt at a behaviour: the user turn sent and the assistant-turn opening."""
    return {
        "id": behaviour["id"],
        "attempt": attempt,
        "behaviour": behaviour["prompt"],
        "prompt": prompt,
        "prefill": prefill,
        **extra,
    }
