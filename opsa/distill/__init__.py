"""Per-token distillation primitives shared by training and the token-level analysis: the
divergence registry, packed sequences, token diagnostics."""
