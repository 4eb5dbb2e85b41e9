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
    TABLES = ("position_sum", "position_count", "token_mass", "token_count")

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
        """JSON-ready: each table as [key, value] pairs (JSON object keys are strings)."""
        return {name: sorted(getattr(self, name).items()) for name in self.TABLES}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.TABLES:
            target = getattr(self, name)
            target.clear()
            target.update((int(k), v) for k, v in state[name])

    def summary(self, tokenizer: Any) -> dict[str, Any]:
        positions = [
            {"position": j, "mean_divergence": self.position_sum[j] / n, "count": n}
            for j, n in sorted(self.position_count.items())
        ]
        top = sorted(self.token_mass, key=lambda t: (-self.token_mass[t], t))  # ties by id
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


def step_sums(offsets: torch.Tensor, values: torch.Tensor) -> dict[str, tuple[float, float]]:
    """(sum, count) of the divergence for the step's log row, over all tokens and over the
    first ten positions; the training loop adds them over processes into means."""
    early = values[offsets < 10]
    return {
        "divergence": (values.sum().item(), float(values.numel())),
        "divergence_first10": (early.sum().item(), float(early.numel())),
    }
