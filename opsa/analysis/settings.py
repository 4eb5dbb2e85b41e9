"""Settings of the analyses, validated by the config check before any rule runs (kept free of
torch, which the check must not wait for)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Divergence = Literal["symmetric_kl", "forward_kl", "reverse_kl"]


class TokenAnalysisSettings(BaseModel):
    """The config's `analysis.token_divergence` block (less its switch and prompt set)."""

    model_config = ConfigDict(extra="forbid")

    rollouts: int = Field(500, ge=1, description="base-model responses analysed (paper: 500)")
    max_tokens: int = Field(64, ge=1, description="response positions read per response")
    batch_size: int = Field(8, ge=1)
    divergence: Divergence = "symmetric_kl"
    top_tokens: int = Field(20, ge=1, description="rows of the table of tokens")
