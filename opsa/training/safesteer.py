"""SafeSteer: on-policy distillation from the frozen model steered along the refusal
direction. The student samples; the same model, with coefficient x direction added to its
hidden states at the direction's layer and no context, scores those ids; the loss is reverse
KL restricted to the safety tokens, not renormalised (config: SafeSteerConfig). Trained on
harmful prompts only, as SafeSteer is."""

from __future__ import annotations

from pathlib import Path

from opsa.prompting.sets import load_prompt_set
from opsa.steering.direction import RefusalDirection
from opsa.steering.hook import Steering
from opsa.training.config import SafeSteerConfig
from opsa.training.identity import run_identity
from opsa.training.onpolicy import train_on_policy


def train_safesteer(
    model_dir: str | Path,
    harmful_path: str | Path,
    direction_path: str | Path,
    config: SafeSteerConfig,
    out_dir: str | Path,
    work_dir: str | Path,
) -> None:
    """Train with SafeSteer; out_dir as for OPSA. The safety tokens are config.token_ids."""
    items = load_prompt_set(harmful_path, "harmful")
    steering = Steering(RefusalDirection.load(direction_path), config.steering_coefficient)
    inputs = {"harmful": harmful_path, "direction": direction_path}
    identity = run_identity("safesteer", config, model_dir, inputs)
    contexts = {"harmful": None}
    train_on_policy(model_dir, items, contexts, config, out_dir, work_dir, identity, steering)
