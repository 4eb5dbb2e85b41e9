"""Resumable state in work_dir: one directory per checkpoint, written whole or not at all.

A checkpoint holds model, optimiser, scheduler, RNG states (via `Accelerator.save_state`) and
every object registered for checkpointing (the run's progress: step, data position, the task's
own state). `run.json` pins the config and inputs the checkpoints belong to.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from opsa.errors import InputError
from opsa.records import write_json

log = logging.getLogger(__name__)
PREFIX = "checkpoint-"


def claim_work_dir(work_dir: Path, identity: dict[str, Any], accelerator: Accelerator) -> None:
    """Create work_dir for this run, or check that the checkpoints there are this run's."""
    path = work_dir / "run.json"
    if path.is_file():
        found = json.loads(path.read_text(encoding="utf-8"))
        if found != identity:
            raise InputError(
                f"{work_dir}: holds checkpoints of a different run (config or inputs differ); "
                "remove it to start over"
            )
    elif accelerator.is_main_process:
        work_dir.mkdir(parents=True, exist_ok=True)
        write_json(path, identity)
    accelerator.wait_for_everyone()


def latest_checkpoint(work_dir: Path) -> Path | None:
    found = sorted(p for p in work_dir.glob(f"{PREFIX}*") if p.is_dir())
    return found[-1] if found else None


def save_checkpoint(accelerator: Accelerator, work_dir: Path, step: int, keep: int) -> Path:
    """Save all state after `step` optimiser steps; older checkpoints beyond `keep` go."""
    final = work_dir / f"{PREFIX}{step:07d}"
    partial = work_dir / f".partial-{step:07d}"
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        os.replace(partial, final)
        for old in sorted(p for p in work_dir.glob(f"{PREFIX}*") if p.is_dir())[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    log.info("checkpoint %s", final)
    return final
