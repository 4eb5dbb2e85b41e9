"""Numbers in the report's tables (kept free of the evaluation code, so the analysis steps
that format a table do not rerun when it changes)."""

from __future__ import annotations

import math


def percent(value: float, low: float, high: float) -> str:
    """A rate as a percentage with its interval, e.g. "12.5 [8.0, 17.0]"."""
    interval = "[no interval]" if math.isnan(low) else f"[{100 * low:.1f}, {100 * high:.1f}]"
    return f"{100 * value:.1f} {interval}"
