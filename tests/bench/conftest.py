"""The suite is the repository's top-level `benchmarks` package, not part of the installed
library: put the checkout on the import path, as `python -m opsa bench` does."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
