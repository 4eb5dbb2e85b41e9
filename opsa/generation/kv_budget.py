"""The KV cache a vLLM engine on a CPU needs for the sequences it holds at once, computed from
the model's config instead of a fixed reservation.

- A token's keys and values take 2 x layers x KV heads x head_dim x the dtype's bytes.
- vLLM stores them in blocks of `BLOCK_TOKENS` token slots: each sequence takes whole blocks,
  and the pool keeps one more back (its null block).
- `FLOOR_MIB` is added on top, and the total is rounded up to whole MiB.

Pure arithmetic: nothing here imports vLLM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

MIB = 2**20
BLOCK_TOKENS = 128  # vLLM's KV block on a CPU (a multiple of 32); the engine is given it
FLOOR_MIB = 64  # headroom past the running sequences (prefix cache), small next to the weights
UNSIZED_KV_CACHE_MIB = 2048  # an engine not told its batch (evaluation, generation) on a CPU


def kv_bytes_per_token(config: Any, dtype: torch.dtype) -> int:
    """Keys and values of one token over every layer of a transformers `config`."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * heads * head_dim * dtype.itemsize


def blocks(tokens: int) -> int:
    """The KV blocks one sequence of `tokens` tokens takes."""
    return -(-tokens // BLOCK_TOKENS)


def kv_cache_bytes(config: Any, dtype: torch.dtype, sequences: int, tokens: int) -> int:
    """The reservation for `sequences` sequences of up to `tokens` tokens each: their whole
    blocks and vLLM's null block, plus the floor, in whole MiB."""
    block_bytes = BLOCK_TOKENS * kv_bytes_per_token(config, dtype)
    needed = (sequences * blocks(tokens) + 1) * block_bytes + FLOOR_MIB * MIB
    return -(-needed // MIB) * MIB
