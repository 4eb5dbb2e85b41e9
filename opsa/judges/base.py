"""The judge interface: (prompt, response) pairs in, verdicts out.

A verdict says whether the response refused and whether it is unsafe (harmful compliance).
A judge that cannot tell one of them leaves it None. Every stored label carries the judge's
name, so results from different judges are never mixed silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class JudgeItem:
    prompt: str
    response: str
    id: str = ""


@dataclass(frozen=True)
class Verdict:
    refused: bool | None
    unsafe: bool | None
    score: float | None = None
    raw: str = ""


class Judge(Protocol):
    name: str

    def judge(self, items: list[JudgeItem]) -> list[Verdict]:
        """One verdict per item, in order."""
        ...
