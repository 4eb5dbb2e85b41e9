"""Choose the privileged contexts from the flip-rate table: c_h for harmful prompts, c_b for
benign ones (or no context), and say why.

- c_h: the highest teacher flip rate (or, with `rank_by: discrimination`, the highest
  discrimination) among the harmful branch's contexts whose benign over-refusal is at most
  `max_over_refusal` and whose teacher passes the gate (opsa.teachers); ties go to
  the higher lower bound of the interval, then the lower over-refusal, then the id. When no
  candidate passes the gate, selection stops with one line naming the best candidate, unless
  `gate.override` is set: then the best candidate is chosen anyway and the choice says so.
- c_b: the lowest over-refusal among the benign branch's contexts (instructions that the
  request is safe and should be answered fully) that keep benign answers helpful (at least
  `min_benign_kept` of the base-answered prompts still answered, mean length at least
  `min_length_ratio` of the base's). No context at all is a candidate too: it is chosen (null)
  unless a context refuses strictly less than the model does on its own.

`selected.json` is what every downstream stage reads: {"harmful": context row, "benign":
context row or null, "why": {...}}. `teachers.json` holds every candidate's teacher point, the
base's and the selected pair's, and the gate's verdict.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from opsa.contexts.candidates import read_candidates
from opsa.contexts.flip_rate import score_columns
from opsa.errors import InputError
from opsa.records import atomic_path, read_json, require_columns, write_json
from opsa.teachers import BITS, GateConfig, gate_failures, pair_point, point_of

log = logging.getLogger(__name__)


class SelectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tfr: Literal["tfr", "tfr_unsafe"] = "tfr"  # which denominator ranks c_h
    rank_by: Literal["flip_rate", "discrimination"] = "flip_rate"  # the paper ranks by TFR
    max_over_refusal: float = Field(0.25, ge=0.0, le=1.0)
    gate: GateConfig = GateConfig()
    min_benign_kept: float = Field(0.9, ge=0.0, le=1.0)
    min_length_ratio: float = Field(0.5, ge=0.0)
    pin_harmful: str | None = None  # a candidate id: skip the search
    pin_benign: str | None = None  # only with pin_harmful; None then means no benign context

    @model_validator(mode="after")
    def _pins_together(self) -> SelectionConfig:
        if self.pin_benign is not None and self.pin_harmful is None:
            raise ValueError("pin_benign needs pin_harmful: pinning skips the whole search")
        return self


def read_scores(paths: str | Path | list[str | Path]) -> pd.DataFrame:
    """One table from one or several flip-rate CSVs (merged table or shards)."""
    paths = [paths] if isinstance(paths, str | Path) else paths
    tables = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in paths]
    if not tables:
        raise InputError("select contexts: no flip-rate tables given")
    table = pd.concat(tables, ignore_index=True)
    require_columns(table.to_dict("records"), score_columns(), ", ".join(map(str, paths)))
    duplicated = table["id"][table["id"].duplicated()]
    if not duplicated.empty:
        raise InputError(f"select contexts: candidate '{duplicated.iloc[0]}' scored twice")
    return table


def rank_contexts(table: pd.DataFrame, config: SelectionConfig) -> pd.DataFrame:
    """The table with eligibility and rank columns for both choices, best c_h first."""
    table = table.copy()
    harmful, benign = table["branch"] == "harmful", table["branch"] == "benign"
    base = point_of(table.iloc[0].to_dict(), "base_")
    failures = [
        gate_failures(point_of(row), base, config.gate) if row["branch"] == "harmful" else []
        for row in table.to_dict("records")
    ]
    table["gate_failures"] = ["; ".join(f) for f in failures]
    table["passes_gate"] = harmful & pd.Series([not f for f in failures], index=table.index)
    table["capped"] = harmful & (table["over_refusal"] <= config.max_over_refusal)
    gated = table["capped"] & table["passes_gate"]
    use_gate = config.gate.enabled and (gated.any() or not config.gate.override)
    table["eligible_harmful"] = gated if use_gate else table["capped"]
    table["eligible_benign"] = (
        benign
        & (table["benign_kept"] >= config.min_benign_kept)
        & (table["benign_length_ratio"] >= config.min_length_ratio)
    )
    key = config.tfr if config.rank_by == "flip_rate" else "discrimination"
    harmful_order = table.sort_values(
        ["eligible_harmful", "capped", key, f"{key}_low", "over_refusal", "id"],
        ascending=[False, False, False, False, True, True],
    ).index
    benign_order = table.sort_values(
        ["eligible_benign", "over_refusal", "benign_kept", "id"],
        ascending=[False, True, False, True],
    ).index
    table.loc[harmful_order, "rank_harmful"] = range(1, len(table) + 1)
    table.loc[benign_order, "rank_benign"] = range(1, len(table) + 1)
    table.loc[~table["eligible_harmful"], "rank_harmful"] = pd.NA
    table.loc[~table["eligible_benign"], "rank_benign"] = pd.NA
    return table.loc[harmful_order]


def select_contexts(
    scores_paths: str | Path | list[str | Path],
    candidates_path: str | Path,
    config: SelectionConfig,
    selected_path: str | Path,
    ranking_path: str | Path,
    teachers_path: str | Path,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Write the ranking (csv), the teachers (json) and the selected contexts (json); pinned
    ids skip the search and the gate."""
    if config.pin_harmful is not None:
        selected = pin_context(
            candidates_path, config.pin_harmful, config.pin_benign, selected_path, ranking_path
        )
        write_json(teachers_path, {"pinned": True, "gate": {"checked": False}, "candidates": []})
        return selected
    ranked = rank_contexts(read_scores(scores_paths), config)
    if not (ranked["branch"] == "harmful").any():
        raise InputError("select contexts: the pool has no candidate of the harmful branch")
    harmful = ranked[ranked["eligible_harmful"]]
    if harmful.empty:
        _no_candidate(ranked, config)
    best_h = harmful.iloc[0]
    if best_h[config.tfr] == 0:
        log.warning("the best context '%s' flips no harmful prompt", best_h["id"])
    benign = ranked[ranked["eligible_benign"]].sort_values("rank_benign")
    best_b = benign.iloc[0] if not benign.empty else None
    if best_b is not None and not best_b["over_refusal"] < best_b["base_over_refusal"]:
        best_b = None
    rows = {c.id: c.to_row() for c in read_candidates(candidates_path)}
    for row_id in [best_h["id"], *([] if best_b is None else [best_b["id"]])]:
        if row_id not in rows:
            raise InputError(f"{candidates_path}: scored candidate '{row_id}' is not in the pool")
    teachers = teacher_table(ranked, best_h, best_b, config, n_bootstrap, seed)
    selected = {
        "harmful": rows[best_h["id"]],
        "benign": None if best_b is None else rows[best_b["id"]],
        "why": {
            "pinned": False,
            "harmful": _why_harmful(best_h, harmful, config),
            "benign": _why_benign(best_b, ranked, benign, config),
            "gate": teachers["gate"],
        },
    }
    if teachers["gate"]["overridden"]:
        log.warning("%s", teachers["gate"]["warning"])
    with atomic_path(Path(ranking_path)) as tmp:
        ranked.drop(columns=[*BITS, *(f"base_{b}" for b in BITS)]).to_csv(tmp, index=False)
    write_json(teachers_path, teachers)
    write_json(selected_path, selected)
    log.info("selected c_h='%s', c_b=%s", best_h["id"], None if best_b is None else best_b["id"])
    return selected


def _no_candidate(ranked: pd.DataFrame, config: SelectionConfig) -> None:
    """Stop with one line: no candidate under the over-refusal cap, or none past the gate."""
    harmful = ranked[ranked["branch"] == "harmful"]
    capped = harmful[harmful["capped"]]
    if capped.empty:
        lowest = harmful.sort_values("over_refusal").iloc[0]
        raise InputError(
            f"select contexts: no candidate has benign over-refusal <= {config.max_over_refusal} "
            f"(max_over_refusal); the lowest is {lowest['over_refusal']:.3f} ('{lowest['id']}')"
        )
    best = capped.iloc[0]
    raise InputError(
        f"teacher gate: no candidate context makes a teacher better than the base model; the "
        f"best, '{best['id']}': {best['gate_failures']} (set contexts.selection.gate.override: "
        "true to train with it anyway)"
    )


def teacher_table(
    ranked: pd.DataFrame,
    best_h: pd.Series,
    best_b: pd.Series | None,
    config: SelectionConfig,
    n_bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    """teachers.json: the base's point, every candidate's, the selected pair's, the gate."""
    rows = ranked.to_dict("records")
    keep = [c for c in point_of(rows[0]) if c not in BITS]
    candidates = [
        {"id": r["id"], "branch": r["branch"], "placement": r["placement"]}
        | {c: r[c] for c in keep}
        | {"tfr": r.get("tfr"), "passes_gate": bool(r["passes_gate"])}
        | {"gate_failures": [f for f in str(r["gate_failures"] or "").split("; ") if f]}
        for r in rows
    ]
    base = point_of(rows[0], "base_")
    pair = pair_point(
        best_h.to_dict(), None if best_b is None else best_b.to_dict(), n_bootstrap, seed
    )
    overridden = config.gate.enabled and not bool(best_h["passes_gate"])
    gate: dict[str, Any] = config.gate.model_dump() | {
        "checked": config.gate.enabled,
        "passed": bool(best_h["passes_gate"]),
        "overridden": overridden,
        "candidates_passing": int(ranked["passes_gate"].sum()),
    }
    if overridden:
        gate["warning"] = (
            f"teacher gate overridden (contexts.selection.gate.override): no candidate passes; "
            f"training with '{best_h['id']}', whose teacher fails it: {best_h['gate_failures']}"
        )
    return _plain(
        {
            "judge": str(rows[0]["judge"]),
            "gate": gate,
            "base": {c: base[c] for c in keep},
            "selected": {
                "harmful": best_h["id"],
                "benign": None if best_b is None else best_b["id"],
                "pair": {c: pair[c] for c in keep},
            },
            "candidates": candidates,
        }
    )


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python ones, NaN as null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and value != value else value


def pin_context(
    candidates_path: str | Path,
    harmful_id: str,
    benign_id: str | None,
    selected_path: str | Path,
    ranking_path: str | Path,
) -> dict[str, Any]:
    """The selected contexts for contexts pinned by id, without scoring anything; `ranking.csv` then
    lists the pool unscored, marking the pinned ids."""
    rows = {c.id: c.to_row() for c in read_candidates(candidates_path)}
    for pinned in [harmful_id, benign_id]:
        if pinned is not None and pinned not in rows:
            raise InputError(f"{candidates_path}: pinned context '{pinned}' is not a candidate")
    selected = {
        "harmful": rows[harmful_id],
        "benign": None if benign_id is None else rows[benign_id],
        "why": {"pinned": True, "harmful": {"id": harmful_id}, "benign": {"id": benign_id}},
    }
    pool = pd.DataFrame(
        {
            "id": list(rows),
            "placement": [r["placement"] for r in rows.values()],
            "chosen_harmful": [i == harmful_id for i in rows],
            "chosen_benign": [i == benign_id for i in rows],
        }
    )
    with atomic_path(Path(ranking_path)) as tmp:
        pool.to_csv(tmp, index=False)
    write_json(selected_path, selected)
    return selected


def _why_harmful(best: pd.Series, eligible: pd.DataFrame, config: SelectionConfig) -> dict:
    runner_up = eligible.iloc[1]["id"] if len(eligible) > 1 else None
    return {
        "id": best["id"],
        "criterion": f"highest {config.tfr} with over_refusal <= {config.max_over_refusal}, "
        f"ties by {config.tfr}_low",
        config.tfr: float(best[config.tfr]),
        f"{config.tfr}_interval": [
            float(best[f"{config.tfr}_low"]),
            float(best[f"{config.tfr}_high"]),
        ],
        "tfr": float(best["tfr"]),
        "tfr_unsafe": float(best["tfr_unsafe"]),
        "over_refusal": float(best["over_refusal"]),
        "eligible": int(len(eligible)),
        "runner_up": runner_up,
    }


def _why_benign(
    best: pd.Series | None, ranked: pd.DataFrame, eligible: pd.DataFrame, config: SelectionConfig
) -> dict:
    base = float(ranked["base_over_refusal"].iloc[0])
    why: dict[str, Any] = {
        "criterion": f"lowest over_refusal with benign_kept >= {config.min_benign_kept} and "
        f"benign_length_ratio >= {config.min_length_ratio}; no context unless strictly lower "
        "than the base",
        "base_over_refusal": base,
        "eligible": int(len(eligible)),
    }
    if best is None:
        return why | {"id": None}
    return why | {
        "id": best["id"],
        "over_refusal": float(best["over_refusal"]),
        "benign_kept": float(best["benign_kept"]),
        "benign_length_ratio": float(best["benign_length_ratio"]),
    }


Position = Literal["middle", "last"]


def ranked_context(
    ranking_path: str | Path,
    selected_path: str | Path,
    candidates_path: str | Path,
    position: Position,
    out_path: str | Path,
) -> None:
    """Contexts to train with beside the selected ones, for flip rate against outcome: the
    harmful context at the middle or last rank of the eligible candidates (the selected one is
    the first), with the selected benign context."""
    ranked = pd.read_csv(ranking_path)
    require_columns(ranked.to_dict("records"), ["id", "tfr", "rank_harmful"], ranking_path)
    eligible = ranked[ranked["rank_harmful"].notna()].sort_values("rank_harmful")
    if len(eligible) < 3:
        raise InputError(
            f"{ranking_path}: {len(eligible)} eligible harmful contexts; flip rate against "
            "outcome needs at least 3 (a best, a middle and a last)"
        )
    row = eligible.iloc[len(eligible) // 2 if position == "middle" else -1]
    rows = {c.id: c.to_row() for c in read_candidates(candidates_path)}
    selected = read_json(selected_path)
    why = {"position": position, "rank": int(row["rank_harmful"]), "tfr": float(row["tfr"])}
    write_json(out_path, {"harmful": rows[row["id"]], "benign": selected["benign"], "why": why})
    log.info("%s context: '%s' (rank %d, TFR %.3f)", position, row["id"], why["rank"], why["tfr"])
