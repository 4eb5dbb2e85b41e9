"""Exact and near-duplicate prompts, fast enough for tens of thousands of rows.

Prompts are normalised (cleaned by opsa.data.text: no invisible characters; then NFKC,
case-folded, punctuation but not arithmetic operators dropped, whitespace collapsed): equal
normalised texts are exact duplicates. Near duplicates are pairs whose character 5-gram sets
have Jaccard similarity at or above a threshold. Candidates come from MinHash
locality-sensitive hashing (64 hashes in 16 bands of 4), so each query only meets the few rows
that share a band with it; every candidate is then checked with the exact Jaccard.
With 16 bands of 4 a pair at Jaccard 0.8 becomes a candidate with probability 0.9998.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from opsa.data.text import clean_text

SHINGLE = 5
BANDS, ROWS = 16, 4
_SHIFT = np.uint64(32)
_rng = np.random.default_rng(20240601)
_A = _rng.integers(1, 1 << 63, size=BANDS * ROWS, dtype=np.uint64) | np.uint64(1)
_B = _rng.integers(0, 1 << 63, size=BANDS * ROWS, dtype=np.uint64)
_WORD_HYPHEN = re.compile(r"(?<=[^\W\d])-(?=[^\W\d])")
_PUNCTUATION = re.compile(r"[^\w\s+\-*/=<>^%]+")  # arithmetic operators carry meaning
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Case, whitespace and punctuation (not arithmetic operators) make no difference."""
    text = unicodedata.normalize("NFKC", clean_text(text)).casefold()
    text = _PUNCTUATION.sub(" ", _WORD_HYPHEN.sub(" ", text))
    return _SPACE.sub(" ", text).strip()


def shingles(norm: str) -> np.ndarray:
    """Sorted unique 64-bit hashes of the character 5-grams of a normalised text."""
    data = np.frombuffer(norm.encode("utf-8"), dtype=np.uint8).astype(np.uint64)
    if len(data) < SHINGLE:
        data = np.pad(data, (0, SHINGLE - len(data)))
    hashes = np.zeros(len(data) - SHINGLE + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(SHINGLE):
            hashes = hashes * np.uint64(1099511628211) + data[k : len(data) - SHINGLE + 1 + k]
    return np.unique(hashes)


def _signature(sh: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        mixed = (_A[:, None] * sh[None, :] + _B[:, None]) >> _SHIFT  # multiply-shift hashing
    return mixed.min(axis=1)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


@dataclass(frozen=True)
class Match:
    """`query` (index into the queries) duplicates `ref` (index into the reference texts)."""

    query: int
    ref: int
    kind: str  # "exact" or "near"
    similarity: float


class DuplicateIndex:
    """An index over reference texts that answers "which of these does a query duplicate?"."""

    def __init__(self, texts: list[str], threshold: float) -> None:
        self.threshold = threshold
        self._exact: dict[str, int] = {}
        self._shingles: list[np.ndarray] = []
        self._buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
        for i, text in enumerate(texts):
            norm = normalise(text)
            self._exact.setdefault(norm, i)
            sh = shingles(norm)
            self._shingles.append(sh)
            for key in _band_keys(_signature(sh)):
                self._buckets[key].append(i)

    def match(self, text: str) -> tuple[int, str, float] | None:
        """(reference index, "exact"|"near", similarity) of the best duplicate, or None."""
        norm = normalise(text)
        if norm in self._exact:
            return self._exact[norm], "exact", 1.0
        sh = shingles(norm)
        candidates = {i for key in _band_keys(_signature(sh)) for i in self._buckets.get(key, ())}
        best: tuple[int, str, float] | None = None
        for i in sorted(candidates):
            sim = jaccard(sh, self._shingles[i])
            if sim >= self.threshold and (best is None or sim > best[2]):
                best = (i, "near", sim)
        return best


def _band_keys(signature: np.ndarray) -> list[tuple[int, bytes]]:
    return [(b, signature[b * ROWS : (b + 1) * ROWS].tobytes()) for b in range(BANDS)]


def find_duplicates(queries: list[str], refs: list[str], threshold: float) -> list[Match]:
    """Every query that duplicates some reference text, with its closest reference."""
    index = DuplicateIndex(refs, threshold)
    matches = []
    for q, text in enumerate(queries):
        found = index.match(text)
        if found is not None:
            matches.append(Match(q, *found))
    return matches
