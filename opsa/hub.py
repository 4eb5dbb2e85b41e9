"""Whether the Hugging Face hub can be reached: asked once, within `TIMEOUT` seconds.

Without this, a hub id that is not in the local cache fails only after the libraries' retries
(about 50 s for a model, 25 s for a dataset) on a machine without network. When the hub cannot
be reached, `hub_offline` sets HF_HUB_OFFLINE for this process, so transformers and datasets
read their local caches only and a missing id fails at once. Call it before importing either.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from urllib.parse import urlparse

TIMEOUT = 3.0
TRUE = ("1", "ON", "YES", "TRUE")


@cache
def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE is set or the hub's endpoint does not answer."""
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in TRUE:
        return True
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=TIMEOUT).close()
    except OSError:
        os.environ["HF_HUB_OFFLINE"] = "1"
        return True
    return False


def hub_failure(what: str, e: Exception) -> str:
    """Why loading `what` from the hub failed, in one line."""
    lines = str(e).strip().splitlines()
    cause = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
    if hub_offline():
        return (
            f"{what}: cannot load offline; the hub cannot be reached or HF_HUB_OFFLINE is set, "
            f"so only the local cache was searched ({cause})"
        )
    return f"{what}: cannot load from the hub ({cause})"
