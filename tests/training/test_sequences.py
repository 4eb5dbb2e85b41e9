"""The loss reads exactly the completion tokens: not prompt, not padding, not after EOS."""

import torch

from opsa.distill.sequences import pack

PAD = 0


def test_loss_positions_cover_exactly_the_completion_tokens():
    prompts = [[5, 6, 7], [8], [9, 10]]
    completions = [[11, 12], [13, 14, 15, 16], [17]]
    b = pack(prompts, completions, PAD)
    assert b.num_tokens == 7
    # each loss position's *next* token is the target, inside its row's completion
    assert torch.equal(b.input_ids[b.rows, b.positions + 1], b.targets)
    assert b.targets.tolist() == [11, 12, 13, 14, 15, 16, 17]
    for r, pos in zip(b.rows.tolist(), b.positions.tolist(), strict=True):
        start = len(prompts[r])  # first completion token index
        assert start - 1 <= pos < start - 1 + len(completions[r])
        assert b.attention_mask[r, pos + 1] == 1
    # right padding: real tokens keep their unpadded positions, padding is masked out
    assert b.input_ids[2].tolist() == [9, 10, 17, PAD, PAD]
    assert b.attention_mask[2].tolist() == [1, 1, 1, 0, 0]
    assert b.offsets.tolist() == [0, 1, 0, 1, 2, 3, 0]


def test_pad_id_equal_to_eos_does_not_confuse_the_loss():
    eos = 2
    b = pack([[5, 6]], [[7, eos]], pad_id=eos)
    assert b.targets.tolist() == [7, eos]  # the stop token is learnt once, padding never


def test_skip_first_tokens():
    b = pack([[5], [6]], [[7, 8, 9], [10]], PAD, skip_first=1)
    assert b.targets.tolist() == [8, 9]
    assert b.offsets.tolist() == [1, 2]
