"""The prepare_data stage: load every prompt set, keep evaluation prompts out of training,
subsample with a seed, and write `<set>.jsonl` files plus `provenance.json`, all or none."""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opsa.data.dedup import BANDS, ROWS, SHINGLE, find_duplicates, normalise
from opsa.data.sources import Label, SourceSpec, load_source
from opsa.errors import InputError
from opsa.records import write_json, write_jsonl

log = logging.getLogger(__name__)

Role = Literal[
    "train_harmful", "train_benign", "eval_harmful", "eval_overrefusal", "eval_reasoning"
]
ROLE_LABEL: dict[str, Label] = {
    "train_harmful": "harmful",
    "train_benign": "benign",
    "eval_harmful": "harmful",
    "eval_overrefusal": "benign",
    "eval_reasoning": "benign",
}
DEFAULT_THRESHOLD = 0.8
_SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SetSpec(BaseModel):
    """One entry of the config's `datasets:` mapping."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    sources: list[SourceSpec] = Field(min_length=1)
    n: int | None = Field(default=None, ge=1)
    answer_type: Literal["gsm8k", "math", "number"] | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _check(self) -> SetSpec:
        if (self.role == "eval_reasoning") != (self.answer_type is not None):
            raise ValueError("answer_type is required for role eval_reasoning and only there")
        return self


def prepare_data(
    sets: dict[str, SetSpec], out_dir: Path, seed: int, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, Any]:
    """Write `<out_dir>/<set>.jsonl` for every set and `<out_dir>/provenance.json`.

    Training sets lose every prompt that duplicates (exactly or nearly) a prompt of any
    evaluation set; evaluation sets stay intact apart from their own exact duplicates.
    Returns the provenance. Nothing is written unless every set loads.
    """
    for name in sets:
        if not _SET_NAME.match(name) or name == "provenance":
            raise InputError(f"data.sets: '{name}' is not a usable set name")
    loaded = {name: _load_set(name, spec) for name, spec in sets.items()}
    _drop_eval_duplicates(loaded, sets, threshold)
    for name, spec in sets.items():
        _subsample(name, loaded[name], spec.n, seed)
    provenance = _provenance(loaded, sets, seed, threshold)
    _write_all(Path(out_dir), {name: state["rows"] for name, state in loaded.items()}, provenance)
    return provenance


def _load_set(name: str, spec: SetSpec) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    infos = []
    for source in spec.sources:
        source_rows, info = load_source(source)
        rows += source_rows
        infos.append(info)
    want = ROLE_LABEL[spec.role]
    for row in rows:
        row["label"] = row["label"] or want
    kept = [r for r in rows if r["label"] == want]
    counts = {"loaded": sum(i["loaded"] for i in infos), "after_filter": len(rows)}
    counts["other_label"] = len(rows) - len(kept)
    if not kept:
        raise InputError(f"data.sets.{name}: no {want} rows (role {spec.role})")
    kept = _unique(name, kept)
    counts["duplicates_within"] = len(rows) - counts["other_label"] - len(kept)
    if spec.answer_type:
        _check_answers(name, kept, spec.answer_type)
    return {"rows": kept, "sources": infos, "counts": counts, "removed": []}


def _unique(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """First row of every normalised prompt; ids must then be unique."""
    seen: set[str] = set()
    ids: set[str] = set()
    out = []
    for row in rows:
        key = normalise(row["prompt"])
        if key in seen:
            continue
        if row["id"] in ids:
            raise InputError(
                f"data.sets.{name}: id '{row['id']}' occurs twice (give sources names)"
            )
        seen.add(key)
        ids.add(row["id"])
        out.append(row)
    return out


def _check_answers(name: str, rows: list[dict[str, Any]], answer_type: str) -> None:
    for row in rows:
        if not row["answer"]:
            raise InputError(f"data.sets.{name}: id '{row['id']}' has no reference answer")
        row["meta"]["answer_type"] = answer_type


def _drop_eval_duplicates(
    loaded: dict[str, dict[str, Any]], sets: dict[str, SetSpec], threshold: float
) -> None:
    evals = [
        (n, r) for n, s in sets.items() if s.role.startswith("eval") for r in loaded[n]["rows"]
    ]
    if not evals:
        return
    refs = [row["prompt"] for _, row in evals]
    for name, spec in sets.items():
        if not spec.role.startswith("train"):
            continue
        state = loaded[name]
        matches = find_duplicates([r["prompt"] for r in state["rows"]], refs, threshold)
        for m in matches:
            row, (eval_set, ref) = state["rows"][m.query], evals[m.ref]
            state["removed"].append(
                {"id": row["id"], "eval_set": eval_set, "eval_id": ref["id"], "kind": m.kind}
                | {"similarity": round(m.similarity, 3)}
            )
        drop = {m.query for m in matches}
        state["rows"] = [r for i, r in enumerate(state["rows"]) if i not in drop]
        exact = sum(m.kind == "exact" for m in matches)
        state["counts"] |= {
            "duplicates_eval_exact": exact,
            "duplicates_eval_near": len(drop) - exact,
        }
        _log_dedup(name, state)
        if not state["rows"]:
            raise InputError(f"data.sets.{name}: every prompt duplicates an evaluation prompt")


def _log_dedup(name: str, state: dict[str, Any]) -> None:
    counts = state["counts"]
    log.info(
        "dedup %s: removed %d exact and %d near duplicates of evaluation prompts",
        name,
        counts["duplicates_eval_exact"],
        counts["duplicates_eval_near"],
    )
    for item in state["removed"][:5]:
        log.info(
            "  %s ~ %s/%s (%s, %.2f)",
            item["id"],
            item["eval_set"],
            item["eval_id"],
            item["kind"],
            item["similarity"],
        )


def _subsample(name: str, state: dict[str, Any], n: int | None, seed: int) -> None:
    rows = state["rows"]
    if n is not None and n < len(rows):
        rng = random.Random(f"{seed}:{name}")
        keep = sorted(rng.sample(range(len(rows)), n))
        state["rows"] = [rows[i] for i in keep]
    elif n is not None and n > len(rows):
        log.warning("set %s: asked for %d rows, only %d available", name, n, len(rows))
    state["counts"]["kept"] = len(state["rows"])


def _provenance(
    loaded: dict[str, dict[str, Any]], sets: dict[str, SetSpec], seed: int, threshold: float
) -> dict[str, Any]:
    out: dict[str, Any] = {"seed": seed, "dedup": _dedup_method(threshold), "sets": {}}
    for name, spec in sets.items():
        state = loaded[name]
        licenses = sorted({i["license"] for i in state["sources"] if i["license"]})
        out["sets"][name] = {
            "role": spec.role,
            "file": f"{name}.jsonl",
            "n": spec.n,
            "answer_type": spec.answer_type,
            "seed": seed,
            "sources": state["sources"],
            "licenses": licenses,
            "counts": state["counts"],
            "removed_as_eval_duplicates": state["removed"],
            "prompts_sha256": _digest(state["rows"]),
        }
    return out


def _dedup_method(threshold: float) -> dict[str, Any]:
    return {
        "normalisation": "NFKC, casefold, punctuation removed, whitespace collapsed",
        "near": f"character {SHINGLE}-gram Jaccard >= {threshold}",
        "candidates": f"MinHash LSH, {BANDS} bands x {ROWS} rows",
        "threshold": threshold,
    }


def _digest(rows: list[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(f"{row['id']}\t{row['prompt']}\n".encode())
    return h.hexdigest()


def _write_all(
    out_dir: Path, rows: dict[str, list[dict[str, Any]]], provenance: dict[str, Any]
) -> None:
    """Write every file into a staging folder, then move them in: all or none."""
    staging = out_dir / f".prepare_data.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for name, set_rows in rows.items():
            write_jsonl(staging / f"{name}.jsonl", set_rows)
        write_json(staging / "provenance.json", provenance)
        for path in sorted(staging.iterdir()):
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for name, set_rows in rows.items():
        log.info("wrote %s (%d prompts)", out_dir / f"{name}.jsonl", len(set_rows))
