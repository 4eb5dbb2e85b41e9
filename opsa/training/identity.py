"""What a run's checkpoints belong to: its stage, config and input files (by content)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_identity(
    stage: str, config: BaseModel, model_dir: str | Path, inputs: dict[str, str | Path]
) -> dict[str, Any]:
    return {
        "stage": stage,
        "model_dir": str(Path(model_dir).resolve()),
        "config": config.model_dump(mode="json"),
        "inputs": {name: file_digest(path) for name, path in sorted(inputs.items())},
    }
