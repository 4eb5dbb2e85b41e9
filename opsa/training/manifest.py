"""A checkpoint's manifest: every file's size and SHA-256, written last, checked before use.

A checkpoint directory is written under a temporary name and renamed whole, so a crash while
saving leaves no checkpoint at all. What the rename cannot prevent is damage afterwards: a
file truncated by a full disk on a network filesystem, a copy cut short, a hand edit. The
manifest catches each of these before a resume reads the file. A checkpoint written before
manifests existed is checked by structure instead: every safetensors header and every JSON
file must parse.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open

from opsa.records import write_json
from opsa.training.identity import file_digest

NAME = "manifest.json"


def write_manifest(checkpoint: Path) -> None:
    """Record every file under `checkpoint` (call it after the last file is written)."""
    files = sorted(p for p in checkpoint.rglob("*") if p.is_file() and p.name != NAME)
    entries = {
        str(p.relative_to(checkpoint)): {"bytes": p.stat().st_size, "sha256": file_digest(p)}
        for p in files
    }
    write_json(checkpoint / NAME, {"files": entries})


def damage(checkpoint: Path) -> str | None:
    """What is wrong with `checkpoint`, in a few words naming the file; None if it is whole."""
    manifest = checkpoint / NAME
    if not manifest.is_file():
        return _structure_damage(checkpoint)
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{NAME} is unreadable"
    for name, entry in entries.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != entry["bytes"]:
            return f"{name} has {size} bytes, the manifest {entry['bytes']}"
        if file_digest(path) != entry["sha256"]:
            return f"{name} does not match its SHA-256 in the manifest"
    return None


def _structure_damage(checkpoint: Path) -> str | None:
    """A checkpoint without a manifest: every safetensors and JSON file must parse."""
    for path in sorted(checkpoint.rglob("*")):
        name = str(path.relative_to(checkpoint))
        try:
            if path.suffix == ".safetensors":
                with safe_open(str(path), "pt") as f:
                    f.keys()
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
        except Exception as e:  # any parse failure of either format is damage
            return f"{name} does not parse ({type(e).__name__})"
    if not (checkpoint / "state.json").is_file():
        return "state.json is missing"
    return None
