"""Resumable state in work_dir: one directory per checkpoint, written whole or not at all, and
read back without unpickling anything.

A checkpoint directory holds
- `model.safetensors`: the student's fp32 weights (and `<name>.safetensors` for every other
  module the run keeps, e.g. the EMA teacher);
- `optimizer.safetensors` + `optimizer.json`: the optimiser's tensors (AdamW moments, step
  counts) and its parameter groups;
- `state.json`: scheduler state and the run's progress (step, the task's own state);
- `rng-<rank>.json` + `rng-<rank>.safetensors`: every process's Python, NumPy and torch RNG
  states.
Tensors are safetensors, everything else JSON: a `.pkl`/`.bin` planted beside them is never
opened. Under DeepSpeed the partitioned model and optimiser go through the engine's own
checkpoint files, read with torch's weights-only loader forced on (unverified here: no GPU).
`run.json` pins the config and inputs the checkpoints belong to.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from safetensors.torch import load_file, load_model, save_file, save_model

from opsa.errors import InputError
from opsa.records import read_json, write_json
from opsa.training.manifest import damage, write_manifest

log = logging.getLogger(__name__)
PREFIX = "checkpoint-"
START_OVER = "OPSA_START_OVER"  # =1: a training whose checkpoints are all damaged starts over


def claim_work_dir(work_dir: Path, identity: dict[str, Any], accelerator: Accelerator) -> None:
    """Create work_dir for this run. Checkpoints of a different run are discarded with a
    warning: its config or inputs changed (which is why Snakemake reruns the job), and
    resuming from them would mix two runs."""
    path = work_dir / "run.json"
    stale = path.is_file() and _recorded_identity(path) != identity
    accelerator.wait_for_everyone()  # every process has read run.json before it changes
    if accelerator.is_main_process:
        if stale:
            log.warning(
                "%s: checkpoints of a different run (config or inputs changed); starting over",
                work_dir,
            )
            shutil.rmtree(work_dir)
        if not path.is_file():
            work_dir.mkdir(parents=True, exist_ok=True)
            write_json(path, identity)
    accelerator.wait_for_everyone()


def _recorded_identity(path: Path) -> Any:
    """run.json's identity; a damaged one stops the run unless the user starts over."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        if not starting_over():
            raise InputError(
                f"{path}: damaged ({type(e).__name__}), so the checkpoints beside it cannot be "
                f"matched to this run; set {START_OVER}=1 to start this training over"
            ) from None
        return None  # differs from any identity: the work dir is discarded


def starting_over() -> bool:
    return os.environ.get(START_OVER, "") == "1"


def latest_checkpoint(work_dir: Path, accelerator: Accelerator) -> Path | None:
    """The newest whole checkpoint (opsa.training.manifest). Each damaged newer one is named
    in a warning and removed; if there are checkpoints and none is whole, the run stops with
    one line, unless START_OVER is set (then it starts from step 0)."""
    found = sorted((p for p in work_dir.glob(f"{PREFIX}*") if p.is_dir()), reverse=True)
    damaged, chosen, problem = [], None, None
    for path in found:
        problem = damage(path)
        if problem is None:
            chosen = path
            break
        damaged.append(path)
        log.warning("%s is damaged: %s", path, problem)
    if found and chosen is None and not starting_over():
        raise InputError(
            f"{work_dir}: no whole checkpoint ({found[-1].name}: {problem}); set "
            f"{START_OVER}=1 to start this training over from step 0"
        )
    accelerator.wait_for_everyone()  # every process has chosen before anything is removed
    if accelerator.is_main_process:
        for path in damaged:
            shutil.rmtree(path)
    accelerator.wait_for_everyone()
    if damaged:
        log.warning("resuming from %s", chosen.name if chosen else "step 0")
    return chosen


def save_checkpoint(
    accelerator: Accelerator, work_dir: Path, step: int, keep: int, state: TrainingState
) -> Path:
    """Save all state after `step` optimiser steps; older checkpoints beyond `keep` go."""
    final = work_dir / f"{PREFIX}{step:07d}"
    partial = work_dir / f".partial-{step:07d}"
    if accelerator.is_main_process:
        if partial.exists():
            shutil.rmtree(partial)
        _check_room(work_dir, state)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    state.save(accelerator, partial)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_manifest(partial)  # last: a checkpoint with a manifest was written whole
        os.replace(partial, final)
        for old in sorted(p for p in work_dir.glob(f"{PREFIX}*") if p.is_dir())[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    log.info("checkpoint %s", final)
    return final


def _check_room(work_dir: Path, state: TrainingState) -> None:
    """Stop before a checkpoint the disk cannot hold: its weights and the optimiser's two
    moments per weight, and every other module the run keeps."""
    modules = [state.model, *state.modules.values()]
    weights = sum(p.numel() * p.element_size() for m in modules for p in m.parameters())
    need, free = 3 * weights / 1e6, shutil.disk_usage(work_dir).free / 1e6
    if need > free:
        raise InputError(
            f"{work_dir}: a checkpoint needs about {need:.0f} MB and {free:.0f} MB are free on "
            "its filesystem; nothing was written (the checkpoints before it are kept)"
        )


class TrainingState:
    """What a checkpoint holds: modules, optimiser, scheduler and JSON-able run state."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        progress: Any,  # state_dict() / load_state_dict() of JSON values
        modules: dict[str, torch.nn.Module],
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.progress = progress
        self.modules = modules

    def save(self, acc: Accelerator, path: Path) -> None:
        rank = acc.process_index
        save_rng(path / f"rng-{rank}")
        if acc.distributed_type == DistributedType.DEEPSPEED:
            self.model.save_checkpoint(str(path / "deepspeed"), tag="state")
        elif acc.is_main_process:
            save_model(acc.unwrap_model(self.model), str(path / "model.safetensors"))
            save_optimizer(self.optimizer, path / "optimizer")
        if acc.is_main_process:
            for name, module in self.modules.items():
                save_model(module, str(path / f"{name}.safetensors"))
            state = {"scheduler": self.scheduler.state_dict(), **self.progress.state_dict()}
            write_json(path / "state.json", state)

    def load(self, acc: Accelerator, path: Path) -> None:
        rng = path / f"rng-{acc.process_index}"
        if not rng.with_suffix(".json").is_file():
            raise InputError(
                f"{path}: no RNG state of process {acc.process_index}: resume with the number "
                "of processes that wrote it"
            )
        if acc.distributed_type == DistributedType.DEEPSPEED:
            with weights_only_loads():
                self.model.load_checkpoint(str(path / "deepspeed"), tag="state")
        else:
            _load_module(acc.unwrap_model(self.model), path / "model.safetensors")
            load_optimizer(self.optimizer, path / "optimizer")
        for name, module in self.modules.items():
            _load_module(module, path / f"{name}.safetensors")
        state = read_json(path / "state.json")
        self.scheduler.load_state_dict(state.pop("scheduler"))
        self.progress.load_state_dict(state)
        load_rng(rng)


def _load_module(module: torch.nn.Module, path: Path) -> None:
    missing, unexpected = load_model(module, str(path), strict=False)
    if missing or unexpected:
        raise InputError(f"{path}: does not fit the model (missing {sorted(missing)[:3]})")


def save_optimizer(optimizer: torch.optim.Optimizer, stem: Path) -> None:
    """Optimiser tensors to `<stem>.safetensors` (key `<param index>.<name>`), the parameter
    groups to `<stem>.json`."""
    state = optimizer.state_dict()
    tensors = {}
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"optimizer state {index}.{name} is not a tensor")
            tensors[f"{index}.{name}"] = value.detach().contiguous().cpu()
    save_file(tensors, str(stem.with_suffix(".safetensors")))
    write_json(stem.with_suffix(".json"), {"param_groups": state["param_groups"]})


def load_optimizer(optimizer: torch.optim.Optimizer, stem: Path) -> None:
    groups = read_json(stem.with_suffix(".json"))["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(stem.with_suffix(".safetensors"))).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_rng(stem: Path) -> None:
    """This process's RNG states: Python's and NumPy's as JSON, torch's as safetensors."""
    version, words, gauss = random.getstate()
    write_json(
        stem.with_suffix(".json"),
        {
            "python": [version, list(words), gauss],
            "numpy": _numpy_state_json(np.random.get_state(legacy=False)),
        },
    )
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors |= {f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    save_file(tensors, str(stem.with_suffix(".safetensors")))


def load_rng(stem: Path) -> None:
    found = read_json(stem.with_suffix(".json"))
    version, words, gauss = found["python"]
    random.setstate((version, tuple(words), gauss))
    numpy = found["numpy"]
    numpy["state"]["key"] = np.asarray(numpy["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy)
    tensors = load_file(str(stem.with_suffix(".safetensors")))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def _numpy_state_json(state: dict[str, Any]) -> dict[str, Any]:
    inner = dict(state["state"])
    inner["key"] = inner["key"].tolist()
    return {**state, "state": inner}


@contextmanager
def weights_only_loads() -> Iterator[None]:
    """Every torch.load inside runs the weights-only unpickler, whatever its caller asked for
    (DeepSpeed passes weights_only=False)."""
    before = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"]
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = before
