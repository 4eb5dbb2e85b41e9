"""The prepare_data stage, one prompt set at a time: load its sources, keep training prompts
out of evaluation sets, subsample with a seed, and write `<set>.jsonl` with its provenance."""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from opsa.data.dedup import BANDS, ROWS, SHINGLE, find_duplicates, normalise
from opsa.data.sources import Label, SourceSpec, load_source
from opsa.errors import InputError
from opsa.evaluation.answers import ANSWER_TYPES
from opsa.records import atomic_path, read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

Role = Literal[
    "train_harmful",
    "train_benign",
    "select_borderline",
    "eval_harmful",
    "eval_overrefusal",
    "eval_reasoning",
]
ROLE_LABEL: dict[str, Label] = {
    "train_harmful": "harmful",
    "train_benign": "benign",
    "select_borderline": "benign",
    "eval_harmful": "harmful",
    "eval_overrefusal": "benign",
    "eval_reasoning": "benign",
}
DEFAULT_THRESHOLD = 0.8
# the columns a code set's rows carry in `meta` to be scored by running them (evaluation.programs)
TEST_COLUMNS = {"humaneval": ("prompt", "test", "entry_point"), "mbpp": ("test_list",)}
_SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _known_answer_type(name: str) -> str:
    """A final-answer type (opsa.evaluation.answers.ANSWER_TYPES) or a code type."""
    known = [*ANSWER_TYPES, *TEST_COLUMNS]
    if name not in known:
        raise ValueError(f"'{name}' is not an answer type (one of {', '.join(known)})")
    return name


class SetSpec(BaseModel):
    """One entry of the config's `datasets:` mapping."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    sources: list[SourceSpec] = Field(min_length=1)
    n: int | None = Field(default=None, ge=1)
    answer_type: Annotated[str, AfterValidator(_known_answer_type)] | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _check(self) -> SetSpec:
        if (self.role == "eval_reasoning") != (self.answer_type is not None):
            raise ValueError("answer_type is required for role eval_reasoning and only there")
        return self


def prepare_set(
    name: str,
    spec: SetSpec,
    out: Path,
    provenance_out: Path,
    seed: int,
    training: Sequence[Path] = (),
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """Write one prompt set to `out` and its provenance to `provenance_out`; return the latter.

    Every set is prepared on its own, so a change to one set (or a new one) never touches the
    others. Evaluation sets are decontaminated against the prepared training sets `training`:
    an evaluation prompt that duplicates (exactly or nearly) a training prompt is removed
    before subsampling. Training sets therefore depend on nothing but their own sources, and
    adding an evaluation set retrains nothing. The selection split's borderline prompts (role
    select_borderline, on which the teachers are measured) count as training here: evaluation
    sets lose their duplicates too. Nothing is written unless the set loads.
    """
    if not _SET_NAME.match(name):
        raise InputError(f"datasets: '{name}' is not a usable set name")
    if training and not spec.role.startswith("eval"):
        raise InputError(f"datasets.{name}: only evaluation sets are decontaminated")
    state = _load_set(name, spec)
    _drop_training_duplicates(name, state, list(training), threshold)
    _subsample(name, state, spec.n, seed)
    provenance = _provenance(name, spec, state, seed, threshold)
    _write_both(out, state["rows"], provenance_out, provenance)
    log.info("wrote %s (%d prompts)", out, len(state["rows"]))
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
        raise InputError(f"datasets.{name}: no {want} rows (role {spec.role})")
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
            raise InputError(f"datasets.{name}: id '{row['id']}' occurs twice (give sources names)")
        seen.add(key)
        ids.add(row["id"])
        out.append(row)
    return out


def _check_answers(name: str, rows: list[dict[str, Any]], answer_type: str) -> None:
    """Every row has what scores it: a reference answer, or a code set's test columns (kept
    through the source's `meta_columns`)."""
    needs = TEST_COLUMNS.get(answer_type, ())
    for row in rows:
        missing = [c for c in needs if row["meta"].get(c) in (None, "", [])]
        if missing:
            raise InputError(
                f"datasets.{name}: id '{row['id']}' has no '{missing[0]}' "
                f"(answer_type {answer_type} needs meta_columns {list(needs)})"
            )
        if not needs and not row["answer"]:
            raise InputError(f"datasets.{name}: id '{row['id']}' has no reference answer")
        row["meta"]["answer_type"] = answer_type


def _drop_training_duplicates(
    name: str, state: dict[str, Any], training: list[Path], threshold: float
) -> None:
    refs = [(path.stem, row) for path in training for row in read_jsonl(path)]
    state["decontaminated_against"] = [path.stem for path in training]
    if not refs:
        return
    matches = find_duplicates(
        [r["prompt"] for r in state["rows"]], [row["prompt"] for _, row in refs], threshold
    )
    for m in matches:
        row, (train_set, ref) = state["rows"][m.query], refs[m.ref]
        state["removed"].append(
            {"id": row["id"], "train_set": train_set, "train_id": ref["id"], "kind": m.kind}
            | {"similarity": round(m.similarity, 3)}
        )
    drop = {m.query for m in matches}
    state["rows"] = [r for i, r in enumerate(state["rows"]) if i not in drop]
    exact = sum(m.kind == "exact" for m in matches)
    state["counts"] |= {
        "duplicates_train_exact": exact,
        "duplicates_train_near": len(drop) - exact,
    }
    _log_dedup(name, state)
    if not state["rows"]:
        raise InputError(f"datasets.{name}: every prompt duplicates a training prompt")


def _log_dedup(name: str, state: dict[str, Any]) -> None:
    counts = state["counts"]
    log.info(
        "dedup %s: removed %d exact and %d near duplicates of training prompts",
        name,
        counts["duplicates_train_exact"],
        counts["duplicates_train_near"],
    )
    for item in state["removed"][:5]:
        log.info(
            "  %s ~ %s/%s (%s, %.2f)",
            item["id"],
            item["train_set"],
            item["train_id"],
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
    name: str, spec: SetSpec, state: dict[str, Any], seed: int, threshold: float
) -> dict[str, Any]:
    return {
        "set": name,
        "role": spec.role,
        "file": f"{name}.jsonl",
        "n": spec.n,
        "answer_type": spec.answer_type,
        "seed": seed,
        "sources": state["sources"],
        "licenses": sorted({i["license"] for i in state["sources"] if i["license"]}),
        "counts": state["counts"],
        "dedup": _dedup_method(threshold),
        "decontaminated_against": state["decontaminated_against"],
        "removed_as_training_duplicates": state["removed"],
        "prompts_sha256": _digest(state["rows"]),
    }


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


def _write_both(
    out: Path, rows: list[dict[str, Any]], provenance_out: Path, provenance: dict[str, Any]
) -> None:
    """Both files or neither: the set is moved in only once its provenance is written."""
    with atomic_path(out) as tmp:
        write_jsonl(tmp, rows)
        write_json(provenance_out, provenance)
