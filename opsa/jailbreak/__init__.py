"""Adaptive jailbreaks: attack prompts built from a harmful set (`attacks`), run against each
model variant (`run`), judged by the configured judge, and scored as attack success rate and
pass@N per attack (`score`)."""
