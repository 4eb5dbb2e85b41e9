"""The generation interface every stage uses: rendered prompts in, completions with token ids out.

The HF-transformers backend lives in `hf.py`; another backend (vLLM) implements the same two
methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field


class SamplingParams(BaseModel):
    """Decoding settings. temperature 0 means greedy; top_k 0 means no top-k cut."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    repetition_penalty: float = Field(1.0, gt=0.0)
    max_new_tokens: int = Field(128, ge=1)
    samples: int = Field(1, ge=1)
    seed: int = 0
    batch_size: int = Field(16, ge=1)


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: Literal["stop", "length"]


class Generator(Protocol):
    tokenizer: Any

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """`params.samples` completions for each rendered prompt, in order."""
        ...

    def next_token_logprobs(
        self, prompts: list[str], candidates: list[str], batch_size: int = 8
    ) -> list[list[float]]:
        """Log-probability of each candidate's first token as the next token of each prompt."""
        ...
