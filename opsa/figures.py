"""Report figures: matplotlib without a display, and PNGs written atomically without the
matplotlib version in their metadata (an unchanged plot is byte-identical, as DVC expects)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from opsa.records import atomic_path  # noqa: E402

__all__ = ["plt", "save_png"]


def save_png(fig: Any, out_path: str | Path, dpi: float | str = 110) -> None:
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
