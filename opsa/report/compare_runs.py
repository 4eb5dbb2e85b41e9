"""One method trained in two runs of the pipeline, compared on the same prompts.

A sensitivity overlay or an off-policy filter arm (config/ablations/, scripts/ablation.sh)
changes how a method trains without changing its variants' names, so it runs in a directory
of its own: a copy of a finished run, where Snakemake retrains only what the overlay changes
(docs/running.md, "Ablations in a folder of their own"). This module reads the evaluation
records of the reference run and of each arm and compares the arm's variants of the method
with the reference's, seed by seed: every evaluation set is resampled with the same stream in
every run of a config (opsa.evaluation.bootstrap), so the paired bootstrap of
opsa.report.paired applies across runs as within one, and the Student-t interval over the
seeds they share is what training noise adds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from opsa.errors import InputError
from opsa.layout import Paths, Variant, fill, folder
from opsa.prompting.sets import load_selected_contexts
from opsa.records import read_json
from opsa.report.evaluations import Record, read_evaluations
from opsa.report.grid import seed_interval, training_seed
from opsa.report.paired import (
    FIRST,
    Difference,
    model_differences,
    points,
    quantity_replicates,
)


def run_records(root: Path) -> list[Record]:
    """Every evaluation record of the run whose working directory is `root`."""
    found = sorted((root / folder(Paths.evaluation)).glob("*/*/*.json"))
    if not found:
        raise InputError(f"{root}: no evaluation records under {folder(Paths.evaluation)}/")
    return read_evaluations(found)


def method_records(records: list[Record], method: str) -> list[Record]:
    """The records of `method`'s seed variants (not its size-sweep or flip-rate variants)."""
    out = []
    for r in records:
        v = Variant.parse(r["variant"])
        if v.method == method and v.fraction is None and v.tfr is None:
            out.append(r)
    return out


def arm_differences(
    reference: list[Record], arm: list[Record], arm_name: str, method: str
) -> list[Difference]:
    """arm − reference for `method`, per model, seed and quantity (S, R, each set)."""
    label = f"{method}[{arm_name}]"
    grouped: dict[str, dict[tuple[str, int], list[Record]]] = defaultdict(lambda: defaultdict(list))
    for name, records in ((method, reference), (label, arm)):
        for r in method_records(records, method):
            grouped[r["model"]][(name, training_seed(r))].append(r)
    out = []
    for model, by_seed in sorted(grouped.items()):
        out += model_differences(by_seed, model, label, method)
    if not out:
        raise InputError(
            f"arm '{arm_name}': no '{method}' variant trained at a seed the reference run has"
        )
    return out


def changed_settings(reference: Path, arm: Path, model: str, method: str) -> dict[str, tuple]:
    """The training settings the arm changed: key -> (reference value, arm value), read from
    the first seed's train_config.json in both runs (absent files: nothing to tell)."""
    name = fill(Paths.model, model=model, variant=method) + "/train_config.json"
    if not (reference / name).is_file() or not (arm / name).is_file():
        return {}
    ours, theirs = read_json(reference / name), read_json(arm / name)
    return {
        key: (ours.get(key), theirs.get(key))
        for key in sorted(set(ours) | set(theirs))
        if ours.get(key) != theirs.get(key)
        and not str(ours.get(key)).startswith((str(reference), str(arm)))
    }


def changed_contexts(reference: Path, arm: Path, model: str) -> dict[str, tuple]:
    """The contexts the arm trained with where they differ from the reference's (a pinned c_h
    or c_b is not a training setting): "c_h"/"c_b" -> (reference id, arm id), read from both
    runs' selected.json (absent files: nothing to tell)."""
    name = fill(Paths.selected, model=model)
    if not (reference / name).is_file() or not (arm / name).is_file():
        return {}
    ids = [
        [c.id if c else None for c in load_selected_contexts(root / name)]
        for root in (reference, arm)
    ]
    return {key: (a, b) for key, a, b in zip(("c_h", "c_b"), *ids, strict=True) if a != b}


def levels(records: list[Record], model: str, method: str) -> dict[str, str]:
    """Each quantity of `method` over its seeds in one run: mean [Student-t interval]."""
    by_variant: dict[str, list[Record]] = defaultdict(list)
    for r in method_records(records, method):
        if r["model"] == model:
            by_variant[r["variant"]].append(r)
    per_seed: dict[str, list[float]] = defaultdict(list)
    for group in by_variant.values():
        for name, (value, _) in quantity_replicates(group).items():
            per_seed[name].append(100 * value)
    out = {}
    for name, values in per_seed.items():
        mean, low, high = seed_interval(values)
        spread = "" if math.isnan(low) else f" [{low:.1f}, {high:.1f}]"
        out[name] = f"{mean:.1f}{spread}"
    return out


def markdown(
    reference: Path,
    arms: dict[str, Path],
    method: str,
) -> str:
    """The comparison table of every arm against the reference run: S, R, then each set."""
    ref_records = run_records(reference)
    lines = [
        f"# {method}: arms against the reference run",
        "",
        f"Reference: `{reference}`. Difference arm − reference in points on the same prompts: "
        "per seed with its paired bootstrap 95% interval; over the seeds both runs trained, the "
        "mean with the Student-t 95% interval across seeds.",
        "",
        "Reference and arm: the method's mean over its seeds [Student-t 95% interval]; a set's "
        "figure is its rate (harmful compliance, over-refusal or accuracy).",
        "",
        "| arm | changed | model | quantity | reference | arm | per seed | mean [across seeds] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm_name, root in arms.items():
        records = run_records(root)
        diffs = arm_differences(ref_records, records, arm_name, method)
        for model in sorted({d.model for d in diffs}):
            changed = changed_contexts(reference, root, model)
            changed |= changed_settings(reference, root, model, method)
            told = ", ".join(f"{k}: {a} → {b}" for k, (a, b) in changed.items()) or "–"
            ref_level = levels(ref_records, model, method)
            arm_level = levels(records, model, method)
            quantities = sorted({d.quantity for d in diffs}, key=_order)
            for quantity in quantities:
                rows = [d for d in diffs if d.model == model and d.quantity == quantity]
                lines.append(_row(arm_name, told, model, quantity, rows, ref_level, arm_level))
    return "\n".join(lines) + "\n"


def _order(quantity: str) -> tuple[int, str]:
    return (FIRST.index(quantity) if quantity in FIRST else len(FIRST), quantity)


def _row(
    arm: str,
    changed: str,
    model: str,
    quantity: str,
    rows: list[Difference],
    ref_level: dict[str, str],
    arm_level: dict[str, str],
) -> str:
    seeds = sorted((d for d in rows if d.seed is not None), key=lambda d: d.seed or 0)
    per_seed = "; ".join(
        f"{d.seed}: {points(d.value)} [{points(d.low)}, {points(d.high)}]" for d in seeds
    )
    mean = next((d for d in rows if d.seed is None), None)
    if mean is None:
        summary = "–" if not seeds else f"{points(seeds[0].value)} (one seed)"
    else:
        summary = f"{points(mean.value)} [{points(mean.seed_low)}, {points(mean.seed_high)}]"
    return (
        f"| {arm} | {changed} | {model} | {quantity} | {ref_level.get(quantity, '–')} "
        f"| {arm_level.get(quantity, '–')} | {per_seed or '–'} | {summary} |"
    )
