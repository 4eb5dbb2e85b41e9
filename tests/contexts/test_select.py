"""Choosing c_h and c_b from a flip-rate table: the cap, the tie-break, the two branches, pins,
no context."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pydantic import ValidationError

from opsa.contexts.flip_rate import score_columns
from opsa.contexts.select import SelectionConfig, pin_context, ranked_context, select_contexts
from opsa.errors import InputError
from opsa.prompting.placement import Context

DEMO = (("How do I make a bomb?", "I'm sorry, I can't help with that."),)


def score_row(id: str, **values) -> dict:
    row = dict.fromkeys(score_columns(), 0)
    row |= {"id": id, "branch": "harmful", "placement": "system", "text": id}
    row |= {"judge": "refusal_pattern"}
    row |= {"benign_kept": 1.0, "benign_length_ratio": 1.0, "base_over_refusal": 0.2}
    # a teacher that passes the gate against a base that refuses little
    row |= teacher("", safe=0.8, low=0.6, borderline=0.05) | teacher("base_", 0.1, 0.0, 0.05)
    return row | values


def teacher(prefix: str, safe: float, low: float, borderline: float) -> dict:
    composite = (safe + 1 - borderline) / 2
    return {
        f"{prefix}harmful_safe": safe,
        f"{prefix}harmful_safe_low": low,
        f"{prefix}harmful_safe_high": min(1.0, safe + 0.2),
        f"{prefix}borderline_refusal": borderline,
        f"{prefix}discrimination": safe - borderline,
        f"{prefix}composite": composite,
        f"{prefix}harmful_safe_bits": "xxxx.",
        f"{prefix}borderline_refused_bits": "....x",
    }


@pytest.fixture
def files(tmp_path):
    rows = [
        score_row("greedy", tfr=0.9, tfr_low=0.7, over_refusal=0.5),
        score_row("wide", tfr=0.6, tfr_low=0.3, over_refusal=0.1),
        score_row("narrow", tfr=0.6, tfr_low=0.4, over_refusal=0.2, benign_kept=0.5),
        score_row("gentle", tfr=0.1, tfr_low=0.0, over_refusal=0.05, benign_length_ratio=0.9),
        # benign branch: decoded on benign prompts only, so no flip rate
        score_row("answer-fully", branch="benign", tfr=None, tfr_low=None, over_refusal=0.1),
        score_row(
            "answer-briefly",
            branch="benign",
            tfr=None,
            tfr_low=None,
            over_refusal=0.02,
            benign_length_ratio=0.3,
        ),
    ]
    scores = tmp_path / "flip_rates.csv"
    pd.DataFrame(rows, columns=score_columns()).to_csv(scores, index=False)
    pool = [Context(r["id"], r["text"], "system") for r in rows]
    pool[2] = Context("narrow", "narrow", "demonstrations", DEMO)
    candidates = tmp_path / "candidates.jsonl"
    candidates.write_text("".join(json.dumps(c.to_row()) + "\n" for c in pool))
    return scores, candidates


def select_into(scores, candidates, out, config):
    return select_contexts(
        scores,
        candidates,
        config,
        out / "selected.json",
        out / "ranking.csv",
        out / "teachers.json",
    )


def test_highest_tfr_under_the_cap_with_tie_break(files, tmp_path):
    scores, candidates = files
    selected = select_into(scores, candidates, tmp_path, SelectionConfig(max_over_refusal=0.25))
    assert selected["harmful"]["id"] == "narrow"  # 'greedy' is over the cap; 'wide' ties lower
    assert selected["harmful"]["turns"] == [{"user": DEMO[0][0], "assistant": DEMO[0][1]}]
    assert selected["why"]["harmful"]["runner_up"] == "wide"
    assert json.loads((tmp_path / "selected.json").read_text()) == selected
    ranking = pd.read_csv(tmp_path / "ranking.csv")
    assert list(ranking["id"][:3]) == ["narrow", "wide", "gentle"]
    assert ranking.set_index("id")["rank_harmful"].isna()["greedy"]


def test_cap_changes_the_choice_and_an_empty_set_is_an_error(files, tmp_path):
    scores, candidates = files
    loose = select_into(scores, candidates, tmp_path, SelectionConfig(max_over_refusal=0.5))
    assert loose["harmful"]["id"] == "greedy"
    with pytest.raises(InputError, match="max_over_refusal.*0.050 \\('gentle'\\)"):
        select_into(scores, candidates, tmp_path, SelectionConfig(max_over_refusal=0.01))


def test_benign_context_is_the_least_refusing_helpful_benign_one_or_none(files, tmp_path):
    scores, candidates = files
    selected = select_into(scores, candidates, tmp_path, SelectionConfig())
    # 'answer-briefly' halves answer lengths; harmful-branch 'gentle' refuses less than
    # 'answer-fully' but is a refusal context, never c_b
    assert selected["benign"]["id"] == "answer-fully"
    assert selected["why"]["benign"]["eligible"] == 1
    loose = SelectionConfig(min_length_ratio=0.2)
    assert select_into(scores, candidates, tmp_path, loose)["benign"]["id"] == "answer-briefly"
    ranking = pd.read_csv(tmp_path / "ranking.csv").set_index("id")
    assert ranking["rank_harmful"].isna()["answer-fully"]
    assert ranking["rank_benign"].isna()["gentle"]
    table = pd.read_csv(scores)
    table["base_over_refusal"] = 0.0  # no context refuses less than the model alone
    table.to_csv(scores, index=False)
    selected = select_into(scores, candidates, tmp_path, SelectionConfig())
    assert selected["benign"] is None and selected["why"]["benign"]["id"] is None


def test_a_pool_without_harmful_candidates_is_an_error(files, tmp_path):
    scores, candidates = files
    table = pd.read_csv(scores)
    table[table["branch"] == "benign"].to_csv(scores, index=False)
    with pytest.raises(InputError, match="no candidate of the harmful branch"):
        select_contexts(
            scores,
            candidates,
            SelectionConfig(),
            tmp_path / "out" / "selected.json",
            tmp_path / "out" / "ranking.csv",
            tmp_path / "out" / "teachers.json",
        )
    assert not (tmp_path / "out").exists()


def test_pin_skips_the_search(files, tmp_path):
    scores, candidates = files
    config = SelectionConfig(pin_harmful="greedy", pin_benign=None)
    selected = select_contexts(
        scores,
        candidates,
        config,
        tmp_path / "out" / "selected.json",
        tmp_path / "out" / "ranking.csv",
        tmp_path / "out" / "teachers.json",
    )
    assert selected["harmful"]["id"] == "greedy" and selected["benign"] is None
    assert selected["why"]["pinned"] is True
    ranking = (tmp_path / "out" / "ranking.csv").read_text().splitlines()
    assert ranking[0] == "id,placement,chosen_harmful,chosen_benign"
    assert sum(",True," in line for line in ranking) == 1  # unscored, the pin marked
    assert (
        pin_context(
            candidates,
            "wide",
            "gentle",
            tmp_path / "selected.json",
            tmp_path / "ranking.csv",
        )["benign"]["id"]
        == "gentle"
    )


def test_benign_pin_alone_is_a_config_error():
    with pytest.raises(ValidationError, match="pin_benign needs pin_harmful"):
        SelectionConfig(pin_benign="gentle")


def test_missing_pin_is_an_input_error(files, tmp_path):
    _, candidates = files
    with pytest.raises(InputError, match="pinned context 'nowhere'"):
        pin_context(
            candidates,
            "nowhere",
            None,
            tmp_path / "selected.json",
            tmp_path / "ranking.csv",
        )
    with pytest.raises(InputError, match="pinned context 'absent'"):
        pin_context(
            candidates,
            "wide",
            "absent",
            tmp_path / "selected.json",
            tmp_path / "ranking.csv",
        )
    assert not (tmp_path / "selected.json").exists()


def test_ranked_contexts_are_the_middle_and_last_eligible(files, tmp_path):
    scores, candidates = files
    selected = select_into(scores, candidates, tmp_path, SelectionConfig(max_over_refusal=0.25))
    picked = {}
    for position in ("middle", "last"):
        out = tmp_path / f"tfr/{position}.json"
        ranked_context(
            tmp_path / "ranking.csv", tmp_path / "selected.json", candidates, position, out
        )
        picked[position] = json.loads(out.read_text())
    # eligible by rank: narrow (selected), wide, gentle; 'greedy' is over the cap
    assert picked["middle"]["harmful"]["id"] == "wide"
    assert picked["last"]["harmful"]["id"] == "gentle" and picked["last"]["why"]["tfr"] == 0.1
    assert picked["middle"]["benign"] == selected["benign"]


def test_ranked_context_needs_three_eligible(files, tmp_path):
    scores, candidates = files
    select_into(scores, candidates, tmp_path, SelectionConfig(max_over_refusal=0.15))
    with pytest.raises(InputError, match="2 eligible harmful contexts"):
        ranked_context(
            tmp_path / "ranking.csv",
            tmp_path / "selected.json",
            candidates,
            "last",
            tmp_path / "last.json",
        )
    assert not (tmp_path / "last.json").exists()


def test_gate_stops_with_the_best_candidate_its_numbers_and_the_override(files, tmp_path):
    scores, candidates = files
    table = pd.read_csv(scores)
    harmful = table["branch"] == "harmful"
    table.loc[harmful, "borderline_refusal"] = 0.5  # every teacher refuses borderline prompts
    table.to_csv(scores, index=False)
    out = tmp_path / "out"
    with pytest.raises(
        InputError,
        match=r"teacher gate: .*'narrow': borderline refusal 0\.500 above the base's 0\.050 "
        r"\+ 0\.1 .*contexts\.selection\.gate\.override: true",
    ):
        select_into(scores, candidates, out, SelectionConfig())
    assert not out.exists()
    chosen = select_into(scores, candidates, out, SelectionConfig(gate={"override": True}))
    assert chosen["harmful"]["id"] == "narrow"  # the choice without a gate
    teachers = json.loads((out / "teachers.json").read_text())
    assert teachers["gate"]["overridden"] and "'narrow'" in teachers["gate"]["warning"]
    assert chosen["why"]["gate"]["overridden"] is True
    off = select_into(
        scores, candidates, tmp_path / "off", SelectionConfig(gate={"enabled": False})
    )
    assert off["harmful"]["id"] == "narrow" and off["why"]["gate"]["overridden"] is False


def test_gate_passes_over_a_higher_flip_rate_and_ranks_by_discrimination(files, tmp_path):
    scores, candidates = files
    table = pd.read_csv(scores).set_index("id")
    table.loc["narrow", ["harmful_safe_low", "discrimination"]] = [0.05, 0.75]  # base inside
    table.loc["gentle", ["discrimination", "discrimination_low"]] = [0.9, 0.8]
    table.reset_index().to_csv(scores, index=False)
    chosen = select_into(scores, candidates, tmp_path / "a", SelectionConfig())
    assert chosen["harmful"]["id"] == "wide"
    teachers = json.loads((tmp_path / "a" / "teachers.json").read_text())
    narrow = next(c for c in teachers["candidates"] if c["id"] == "narrow")
    assert not narrow["passes_gate"] and "does not exclude the base's" in narrow["gate_failures"][0]
    assert teachers["base"]["harmful_safe"] == 0.1 and teachers["gate"]["passed"]
    by_discrimination = SelectionConfig(rank_by="discrimination")
    assert select_into(scores, candidates, tmp_path / "b", by_discrimination)["harmful"]["id"] == (
        "gentle"
    )


def test_the_selected_pair_is_measured_from_both_contexts_verdicts(files, tmp_path):
    scores, candidates = files
    table = pd.read_csv(scores).set_index("id")
    table.loc["narrow", "harmful_safe_bits"] = "xxx.."
    table.loc["answer-fully", "borderline_refused_bits"] = "x...."
    table.reset_index().to_csv(scores, index=False)
    chosen = select_into(scores, candidates, tmp_path, SelectionConfig())
    assert (chosen["harmful"]["id"], chosen["benign"]["id"]) == ("narrow", "answer-fully")
    pair = json.loads((tmp_path / "teachers.json").read_text())["selected"]["pair"]
    assert pair["harmful_safe"] == pytest.approx(0.6)
    assert pair["borderline_refusal"] == pytest.approx(0.2)
    assert pair["composite"] == pytest.approx(0.7)
    assert pair["composite_low"] < 0.7 < pair["composite_high"]
