"""The generation interface every stage uses: rendered prompts (or their token ids) in,
completions with token ids out.

Two backends implement it: HF transformers (`hf.py`) and vLLM (`vllm.py`); `backend.py` opens
the one the runtime (`opsa.models.runtime`) chooses. Both stop on the same ids (`stop_ids`),
tokenise a rendered prompt the same way (`encode_texts`), and return the same `Completion`.
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
    """One sampled continuation. `token_ids` stop before the stop token; `stop_id` is the stop
    token the model emitted (any of the model's stop ids), None when it ran out of length."""

    text: str
    token_ids: list[int]
    finish_reason: Literal["stop", "length"]
    stop_id: int | None = None


class Generator(Protocol):
    tokenizer: Any
    desc: str  # progress-bar and log label

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """`params.samples` completions for each rendered prompt, in order."""
        ...

    def generate_ids(
        self, prompt_ids: list[list[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        """The same, for prompts already held as token ids (never re-tokenised)."""
        ...

    def next_token_logprobs(
        self, prompts: list[str], candidates: list[str], batch_size: int = 8
    ) -> list[list[float]]:
        """Log-probability of each candidate's first token as the next token of each prompt."""
        ...


def encode_texts(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Rendered prompts as token ids: the chat template already placed every special token."""
    return [tokenizer.encode(t, add_special_tokens=False) for t in texts]


def stop_ids(eos: int | list[int] | None, tokenizer: Any) -> list[int]:
    """Every id generation stops on: the generation config's eos id(s) and the tokenizer's."""
    ids = set(eos if isinstance(eos, list) else [eos]) | {tokenizer.eos_token_id}
    return sorted(ids - {None})


def completion(tokenizer: Any, ids: list[int], stops: list[int]) -> Completion:
    """A completion from generated ids: cut at the first stop id, which is kept as `stop_id`."""
    end = next((k for k, t in enumerate(ids) if t in stops), None)
    kept = ids if end is None else ids[:end]
    return Completion(
        text=tokenizer.decode(kept, skip_special_tokens=True),
        token_ids=kept,
        finish_reason="length" if end is None else "stop",
        stop_id=None if end is None else ids[end],
    )
