"""Activation steering of a frozen model (SafeSteer's teacher): a refusal direction from
mean hidden states, a forward hook that adds it, and the safety tokens it promotes."""
