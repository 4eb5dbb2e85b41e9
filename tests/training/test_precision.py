"""Mixed precision that trains: bf16 compute over fp32 master weights and AdamW state moves
the weights in one step at lr 1e-5 as the fp32 step does (bf16 weights updated directly did
not: 1.5% of the embedded model's weights changed, against 99.7% in fp32)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from opsa.training.config import OPSAConfig
from opsa.training.onpolicy import train_opsa

ONE_STEP = dict(
    batch_size=4,
    micro_batch_size=2,
    max_new_tokens=8,
    top_k=16,
    max_steps=1,
    lr=1e-5,
    schedule="constant",
    warmup_steps=0,
    temperature=1e-3,  # near-greedy: both runs train on the same rollouts
)


def one_step_update(model_dir, files, tmp_path, name, **overrides) -> dict[str, torch.Tensor]:
    out = tmp_path / f"{name}-out"
    config = OPSAConfig(**(ONE_STEP | overrides))
    train_opsa(
        model_dir,
        files["harmful"],
        files["benign"],
        files["contexts"],
        config,
        out,
        tmp_path / f"{name}-work",
    )
    before, after = load_file(model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(t.dtype == torch.float32 for t in after.values())  # fp32 storage
    return {k: after[k] - before[k] for k in after}


def changed_fraction(update: dict[str, torch.Tensor]) -> float:
    return sum((u != 0).sum().item() for u in update.values()) / sum(
        u.numel() for u in update.values()
    )


def flat(update: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([update[k].flatten() for k in sorted(update)]).double()


def test_bf16_mixed_precision_step_moves_the_weights_as_fp32_does(
    tiny_model_dir, prompt_files, tmp_path
):
    """Tolerances: at least 95% of the fp32 step's changed-weight fraction; update norm within
    5% of fp32's; direction cosine >= 0.95 (bf16 gradients flip the sign of AdamW's first
    update only where a gradient is near zero)."""
    fp32 = one_step_update(tiny_model_dir, prompt_files, tmp_path, "fp32")
    bf16 = one_step_update(tiny_model_dir, prompt_files, tmp_path, "bf16", mixed_precision="bf16")
    f32, b16 = changed_fraction(fp32), changed_fraction(bf16)
    assert f32 > 0.9 and b16 >= 0.95 * f32, (f32, b16)
    a, b = flat(fp32), flat(bf16)
    assert b.norm() == pytest.approx(a.norm().item(), rel=0.05)
    assert torch.nn.functional.cosine_similarity(a, b, dim=0) >= 0.95


def test_bf16_autocast_runs_on_this_cpu():
    layer = torch.nn.Linear(8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(torch.randn(2, 8))
    assert out.dtype == torch.bfloat16 and layer.weight.dtype == torch.float32
