"""opsa: on-policy self-distillation for LLM safety alignment."""

__version__ = "0.1.0"
