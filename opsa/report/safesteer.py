"""SafeSteer's artifacts in summary.md: per policy, the refusal direction and the safety tokens
its steered teacher promotes (the table the `safety_tokens` step writes beside its JSON)."""

from __future__ import annotations

from pathlib import Path

from opsa.errors import InputError

TITLE = "# SafeSteer: refusal direction and safety tokens"


def markdown_section(paths: list[Path]) -> str:
    """summary.md's SafeSteer section: each policy's `safety_tokens.md`, under its name."""
    lines = ["", "## SafeSteer: refusal direction and safety tokens", ""]
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        if not text.startswith(TITLE):
            raise InputError(f"{path}: not a SafeSteer token table (no '{TITLE}' title)")
        lines += [f"**{Path(path).parent.name}**", "", text[len(TITLE) :].strip(), ""]
    return "\n".join(lines)
