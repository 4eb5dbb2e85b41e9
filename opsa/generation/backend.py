"""Open the generator a stage asks for, on the backend and placement the runtime decides: the
one place a generator over a model directory is built."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from opsa.generation.engine import Generator
from opsa.generation.hf import HFGenerator
from opsa.models.load import load_tokenizer
from opsa.models.runtime import Role, current

if TYPE_CHECKING:
    from opsa.generation.vllm import VLLMGenerator


def open_generator(
    model_dir: str | Path, role: Role, desc: str = "generate", trust_remote_code: bool = False
) -> Generator:
    """A generator over the model in `model_dir`."""
    runtime = current()
    if runtime.backend(role) == "vllm":
        from opsa.generation.vllm import VLLMGenerator

        placement, settings = runtime.placement(role), runtime.config.vllm
        generator = VLLMGenerator.start(model_dir, placement, settings, trust_remote_code)
        generator.desc = desc
        return generator
    model = runtime.load_model(model_dir, role, trust_remote_code)
    return HFGenerator(model, load_tokenizer(model_dir, trust_remote_code), desc)


def open_rollout_engine(
    model_dir: str | Path,
    trust_remote_code: bool = False,
    sequences: int | None = None,
    tokens_per_sequence: int | None = None,
) -> VLLMGenerator | None:
    """A vLLM engine for on-policy rollouts, its weights random until the trainer pushes the
    student's (never loaded from disk), its KV cache sized for `sequences` sequences of up to
    `tokens_per_sequence` tokens when given; None when the runtime rolls out with HF, which
    generates from the live student itself."""
    runtime = current()
    if runtime.backend("rollout") != "vllm":
        return None
    from opsa.generation.vllm import VLLMGenerator

    placement, settings = runtime.placement("rollout"), runtime.config.vllm
    return VLLMGenerator.start(
        model_dir, placement, settings, trust_remote_code, load_weights=False,
        sequences=sequences, tokens_per_sequence=tokens_per_sequence,
    )  # fmt: skip
