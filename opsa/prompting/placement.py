"""The one place where a privileged context enters a chat.

Flip-rate scoring, OPSA's teacher, the off-policy baseline and the analyses all build their
prompts here, so the student's and the teacher's prompts can never drift apart: the student's
chat is `build_messages(prompt)`; the teacher's is `build_messages(prompt, context)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from opsa.errors import InputError
from opsa.prompting.chat import Message, render_chat

Placement = Literal["system", "user_prefix", "user_suffix", "demonstrations"]
PLACEMENTS: tuple[str, ...] = ("system", "user_prefix", "user_suffix", "demonstrations")


@dataclass(frozen=True)
class Context:
    """A privileged context. `turns` holds the earlier exchange for the demonstrations placement."""

    id: str
    text: str
    placement: Placement
    turns: tuple[tuple[str, str], ...] = field(default=())  # (user, assistant) pairs
    axes: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            raise InputError(
                f"context '{self.id}': unknown placement '{self.placement}' "
                f"(expected one of {', '.join(PLACEMENTS)})"
            )
        if self.placement == "demonstrations" and not self.turns:
            raise InputError(f"context '{self.id}': placement 'demonstrations' needs 'turns'")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Context:
        turns = tuple((t["user"], t["assistant"]) for t in row.get("turns") or ())
        return cls(row["id"], row.get("text", ""), row["placement"], turns, row.get("axes") or {})

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.id, "text": self.text, "placement": self.placement}
        if self.turns:
            row["turns"] = [{"user": u, "assistant": a} for u, a in self.turns]
        if self.axes:
            row["axes"] = self.axes
        return row

    def pieces(self) -> list[str]:
        """The strings this context puts into a chat (checked after rendering)."""
        if self.placement == "demonstrations":
            return [s for pair in self.turns for s in pair]
        return [self.text]


def build_messages(prompt: str, context: Context | None = None) -> list[Message]:
    """The chat for `prompt`, with `context` placed as it says (None: the student's chat)."""
    if context is None or (context.placement != "demonstrations" and not context.text):
        return [{"role": "user", "content": prompt}]
    if context.placement == "system":
        return [{"role": "system", "content": context.text}, {"role": "user", "content": prompt}]
    if context.placement == "user_prefix":
        return [{"role": "user", "content": f"{context.text}\n\n{prompt}"}]
    if context.placement == "user_suffix":
        return [{"role": "user", "content": f"{prompt}\n\n{context.text}"}]
    earlier: list[Message] = []
    for user, assistant in context.turns:
        earlier += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return [*earlier, {"role": "user", "content": prompt}]


def render_prompt(tokenizer: Any, prompt: str, context: Context | None = None) -> str:
    """Render the chat for `prompt` with `context`, and check the template kept the context.

    Some chat templates drop a system message or rewrite turns; a context that does not appear
    exactly once in the rendered text is an error, never a silent no-op.
    """
    text = render_chat(tokenizer, build_messages(prompt, context))
    if context is not None:
        for piece in context.pieces():
            if piece and text.count(piece) != 1:
                raise InputError(
                    f"context '{context.id}': the chat template of {tokenizer.name_or_path} "
                    f"does not keep placement '{context.placement}' (context text found "
                    f"{text.count(piece)} times in the rendered prompt)"
                )
    return text
