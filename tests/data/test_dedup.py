"""Exact and near duplicates: normalisation, real overlaps, and speed at scale."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pandas as pd

from opsa.data.dedup import find_duplicates, jaccard, normalise, shingles


def test_normalise_ignores_case_space_and_punctuation_but_not_operators() -> None:
    assert normalise("  How do I KILL a process?!") == normalise("how do i kill a process")
    assert normalise("step-by-step “guide”") == "step by step guide"
    assert normalise("What is 15 * 1?") != normalise("What is 15 + 1?")


def test_jaccard_of_shingles() -> None:
    a = shingles(normalise("write a poem about the sea"))
    assert jaccard(a, a) == 1.0
    assert jaccard(a, shingles(normalise("compile a kernel module"))) < 0.1


def test_advbench_is_inside_harmbench_extra_behaviours(shared_data: Path) -> None:
    advbench = pd.read_csv(shared_data / "advbench" / "harmful_behaviors.csv")["goal"].tolist()
    extra = pd.read_csv(shared_data / "harmbench" / "extra_advbench_behaviors.csv")
    refs = extra["Behavior"].tolist()
    matches = find_duplicates(advbench, refs, threshold=0.8)
    exact = [m for m in matches if m.kind == "exact"]
    assert len(exact) >= 500
    assert all(normalise(advbench[m.query]) == normalise(refs[m.ref]) for m in exact)


def test_changed_punctuation_case_and_a_word_are_caught(shared_data: Path) -> None:
    refs = pd.read_csv(shared_data / "harmbench" / "harmbench_behaviors_text_all.csv")
    refs = refs["Behavior"].tolist()
    original = refs[0]
    shouty = original.upper().replace(" ", "  ") + "!!"
    words = original.split()
    reworded = " ".join(words[:-1] + ["instruments"])
    unrelated = "Write a recipe for chocolate chip cookies."
    matches = find_duplicates([shouty, reworded, unrelated], refs, threshold=0.8)
    found = {m.query: m for m in matches}
    assert found[0].kind == "exact" and found[0].ref == 0
    assert found[1].kind == "near" and found[1].ref == 0 and 0.8 <= found[1].similarity < 1
    assert 2 not in found


def test_index_scales_to_tens_of_thousands_of_rows() -> None:
    rng = random.Random(0)
    vocab = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) for _ in range(3000)
    ]
    refs = [" ".join(rng.choices(vocab, k=14)) for _ in range(5000)]
    queries = [" ".join(rng.choices(vocab, k=14)) for _ in range(20000)]
    planted = {q: rng.randrange(len(refs)) for q in rng.sample(range(len(queries)), 40)}
    for q, r in planted.items():
        words = refs[r].split()
        words[rng.randrange(len(words))] = "zzzz"
        queries[q] = " ".join(words)
    start = time.perf_counter()
    matches = find_duplicates(queries, refs, threshold=0.7)
    elapsed = time.perf_counter() - start
    assert {m.query: m.ref for m in matches} == planted
    assert elapsed < 60, f"{elapsed:.1f}s for 20k x 5k"
