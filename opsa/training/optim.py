"""AdamW and the learning-rate schedule (cosine with warm-up, or warm-up then constant)."""

from __future__ import annotations

import math

import torch

from opsa.training.config import TrainConfig


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over all trainable parameters; no weight decay on biases and norm weights."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.adam_betas, eps=config.adam_eps)


def lr_factor(step: int, total_steps: int, config: TrainConfig) -> float:
    """Multiplier of the peak learning rate at optimiser step `step` (0-based)."""
    if config.schedule == "constant":
        warmup = config.warmup_steps
        return (step + 1) / (warmup + 1) if step < warmup else 1.0
    warmup = math.ceil(config.warmup_ratio * total_steps)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, config: TrainConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, config)
    )
