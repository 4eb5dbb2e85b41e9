"""The baselines' training data: the off-policy self-distillation pairs and an external
teacher's pairs (both trained by SFT, opsa.training.sft)."""
