"""Training stages: OPSA (on-policy self-distillation) and its SFT baselines, full-parameter."""
