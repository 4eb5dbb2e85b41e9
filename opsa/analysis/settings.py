"""Settings of the token-level analysis, validated by the config check before any rule runs
(kept free of torch, which the check must not wait for)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from opsa.distill.divergence import DivergenceName


class TokenAnalysisSettings(BaseModel):
    """The config's `analysis.token_divergence` block (less its switch and prompt set)."""

    model_config = ConfigDict(extra="forbid")

    rollouts: int = Field(500, ge=1, description="base-model responses analysed (paper: 500)")
    max_tokens: int = Field(64, ge=1, description="response positions read per response")
    batch_size: int = Field(8, ge=1)
    divergence: DivergenceName = Field(
        "symmetric_kl", description="a name in opsa.distill.divergence.DIVERGENCES"
    )
    top_tokens: int = Field(20, ge=1, description="rows of the table of tokens")
