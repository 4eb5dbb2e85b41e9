"""Prompt ids + completion ids -> one right-padded batch and the positions the loss reads.

Right padding keeps every real token at the position it had unpadded, so the student and the
teacher see each completion token at an exact position. The loss never reads a mask: it reads
only the (row, position) pairs listed here, one per completion token, so prompt tokens, padding
and anything after the end of a completion cannot enter it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor


@dataclass
class PackedBatch:
    input_ids: Tensor  # [B, L]
    attention_mask: Tensor  # [B, L]
    rows: Tensor  # [N] batch row of each loss token
    positions: Tensor  # [N] position whose output predicts the token (token index - 1)
    targets: Tensor  # [N] the completion token ids
    offsets: Tensor  # [N] index of the token within its completion (0 = first)

    @property
    def num_tokens(self) -> int:
        return int(self.targets.numel())


def pack(
    prompts: list[list[int]], completions: list[list[int]], pad_id: int, skip_first: int = 0
) -> PackedBatch:
    """Concatenate each prompt with its completion; list the completion tokens the loss reads,
    leaving out the first `skip_first` of each completion."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    length = max(len(p) + len(c) for p, c in zip(prompts, completions, strict=True))
    ids = torch.full((len(prompts), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), length), dtype=torch.long)
    rows, positions, targets, offsets = [], [], [], []
    for b, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        ids[b, : len(p) + len(c)] = torch.tensor(p + c, dtype=torch.long)
        mask[b, : len(p) + len(c)] = 1
        for j in range(skip_first, len(c)):
            rows.append(b)
            positions.append(len(p) + j - 1)
            targets.append(c[j])
            offsets.append(j)
    as_long = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
    return PackedBatch(
        ids, mask, as_long(rows), as_long(positions), as_long(targets), as_long(offsets)
    )
