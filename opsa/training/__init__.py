"""Training: the METHODS registry and the trainers (OPSA, SafeSteer, SFT), full-parameter."""
