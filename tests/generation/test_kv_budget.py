"""The KV cache reserved for a vLLM engine's sequences: linear in the sequences and in their
whole blocks, the floor on top, whole MiB, and SmolLM2-135M's number by hand."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from transformers import LlamaConfig

from opsa.generation.kv_budget import (
    BLOCK_TOKENS,
    FLOOR_MIB,
    MIB,
    kv_bytes_per_token,
    kv_cache_bytes,
)

# 2 x 32 layers x 8 KV heads x 128 x 2 bytes = 128 KiB a token: a block is 16 MiB exactly
WHOLE = SimpleNamespace(num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                        head_dim=128, hidden_size=4096)  # fmt: skip
BLOCK = BLOCK_TOKENS * 128 * 1024
FLOOR = FLOOR_MIB * MIB


def above_floor(sequences: int, tokens: int) -> int:
    """What the sequences themselves take (the floor and vLLM's null block taken off)."""
    return kv_cache_bytes(WHOLE, torch.bfloat16, sequences, tokens) - FLOOR - BLOCK


def test_the_reservation_doubles_with_the_sequences_and_with_their_length():
    assert above_floor(4, 256) == 4 * 2 * BLOCK
    assert above_floor(8, 256) == 2 * above_floor(4, 256)
    assert above_floor(4, 512) == 2 * above_floor(4, 256)


def test_a_sequence_takes_whole_blocks_and_the_floor_is_always_there():
    assert above_floor(3, 1) == above_floor(3, BLOCK_TOKENS) == 3 * BLOCK
    assert above_floor(3, BLOCK_TOKENS + 1) == 3 * 2 * BLOCK
    assert kv_cache_bytes(WHOLE, torch.bfloat16, 0, 100) == FLOOR + BLOCK


def test_smollm2_135m_by_hand():
    """30 layers, 3 KV heads of 64, fp32: 46,080 bytes a token. 4 sequences of 165 tokens
    take 2 blocks each, 9 with the null block: 9 x 128 x 46,080 + 64 MiB = 114.6 MiB -> 115."""
    config = LlamaConfig(num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         hidden_size=576, head_dim=64)  # fmt: skip
    assert kv_bytes_per_token(config, torch.float32) == 46_080
    assert kv_cache_bytes(config, torch.float32, 4, 165) == 115 * MIB
    assert kv_cache_bytes(config, torch.bfloat16, 4, 165) == 90 * MIB  # 89.3 rounded up


def test_kv_heads_and_head_size_fall_back_to_the_attention_heads():
    """A config without num_key_value_heads or head_dim: one KV head per attention head,
    hidden_size / heads wide."""
    plain = SimpleNamespace(num_hidden_layers=2, num_attention_heads=4, hidden_size=256)
    assert kv_bytes_per_token(plain, torch.float16) == 2 * 2 * 4 * 64 * 2
