"""A trained model folder made ready to share: its files (weights hard-linked where the
filesystem allows) and its model card completed with the evaluation table.

The card a training step writes into the folder (opsa.training.model_card) cannot hold the
evaluation: evaluation runs after the folder is finished, and a pipeline step must not write
into another step's output. `python -m opsa export-model` writes a new folder instead, with
the training card followed by every evaluation record of that model variant (each figure with
its interval, n and judge) and S and R.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from opsa.errors import InputError
from opsa.records import atomic_path, read_text
from opsa.report.cells import percent
from opsa.report.composite import composites
from opsa.report.evaluations import Record, read_evaluations

CARD = "README.md"


def evaluation_section(records: list[Record]) -> str:
    lines = [
        "## Evaluation",
        "",
        "Percent, 95% bootstrap intervals over prompts; the judge names what a safety figure "
        "measures (a refusal detector's harmful compliance is a rate of not refusing).",
        "",
        "| set | metric | value [95% CI] | n | judge |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        value = percent(r["value"], r["ci_low"], r["ci_high"])
        lines.append(f"| {r['set']} | {r['metric']} | {value} | {r['n']} | {r['judge'] or '–'} |")
    for name, c in composites(records).items():
        lines.append(f"| all | {name} | {percent(c.value, c.low, c.high)} | {c.n} | – |")
    return "\n".join(lines) + "\n"


def export_model(model_dir: Path, eval_paths: list[Path], out: Path) -> None:
    """`model_dir`'s files into `out`, its card followed by the evaluation of that variant."""
    if not (model_dir / CARD).is_file():
        raise InputError(f"{model_dir}: no {CARD} (not a folder a training step wrote)")
    records = read_evaluations(eval_paths)
    variants = {(r["model"], r["variant"]) for r in records}
    if len(variants) != 1:
        raise InputError(f"export: the evaluations are of {len(variants)} model variants, not one")
    card = read_text(model_dir / CARD).rstrip("\n") + "\n\n" + evaluation_section(records)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for path in sorted(model_dir.iterdir()):
            if path.is_file() and path.name != CARD:
                _link_or_copy(path, tmp / path.name)
        (tmp / CARD).write_text(card, encoding="utf-8")


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(source, target)
