"""Per-token diagnostics of the distillation signal, accumulated over a run.

Per completion position: the mean divergence (where along the trajectory the teacher and the
student disagree). Per sampled token id: the divergence mass it carries (which tokens the
update concentrates on, e.g. compliance openers).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from opsa.records import write_json


class TokenDiagnostics:
    def __init__(self, top_tokens: int) -> None:
        self.top_tokens = top_tokens
        self.position_sum: dict[int, float] = defaultdict(float)
        self.position_count: dict[int, int] = defaultdict(int)
        self.token_mass: dict[int, float] = defaultdict(float)
        self.token_count: dict[int, int] = defaultdict(int)

    def add(self, offsets: torch.Tensor, targets: torch.Tensor, values: torch.Tensor) -> None:
        for j, y, v in zip(
            offsets.tolist(), targets.tolist(), values.float().tolist(), strict=True
        ):
            self.position_sum[j] += v
            self.position_count[j] += 1
            self.token_mass[y] += v
            self.token_count[y] += 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "position_sum": dict(self.position_sum),
            "position_count": dict(self.position_count),
            "token_mass": dict(self.token_mass),
            "token_count": dict(self.token_count),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, values in state.items():
            target = getattr(self, name)
            target.clear()
            target.update(values)

    def summary(self, tokenizer: Any) -> dict[str, Any]:
        positions = [
            {"position": j, "mean_divergence": self.position_sum[j] / n, "count": n}
            for j, n in sorted(self.position_count.items())
        ]
        top = sorted(self.token_mass, key=lambda t: self.token_mass[t], reverse=True)
        tokens = [
            {
                "token_id": t,
                "token": tokenizer.decode([t]),
                "mass": self.token_mass[t],
                "count": self.token_count[t],
            }
            for t in top[: self.top_tokens]
        ]
        return {"per_position": positions, "top_tokens": tokens}

    def write(self, path: Path, tokenizer: Any) -> None:
        write_json(path, self.summary(tokenizer))


def step_summary(offsets: torch.Tensor, values: torch.Tensor) -> dict[str, float]:
    """Divergence means for the step's log row: all tokens and the first ten positions."""
    if values.numel() == 0:
        return {"divergence": 0.0, "divergence_first10": 0.0}
    early = values[offsets < 10]
    return {
        "divergence": round(values.mean().item(), 6),
        "divergence_first10": round(early.mean().item(), 6) if early.numel() else 0.0,
    }
