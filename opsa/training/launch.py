"""The GPU path: an `accelerate launch` command and the DeepSpeed ZeRO config it runs under.

The templates live in envs/deepspeed/ (zero2.json, zero3.json, accelerate.yaml); this module
fills in the batch geometry, clipping and precision from a training config, writes the files
for one run, and returns the command that runs `python -m opsa train` on every GPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

from opsa.errors import InputError
from opsa.records import write_json
from opsa.training.config import OPSAConfig, TrainConfig

TEMPLATES = Path(__file__).resolve().parents[2] / "envs" / "deepspeed"
ZeroStage = Literal[2, 3]


def check_geometry(config: TrainConfig, num_processes: int) -> int:
    """Gradient accumulation steps per process; DeepSpeed needs the batch to split evenly."""
    per_step = config.micro_batch_size * num_processes
    if config.batch_size % per_step:
        raise InputError(
            f"batch_size ({config.batch_size}) must be a multiple of micro_batch_size x "
            f"num_processes ({per_step}) under DeepSpeed"
        )
    return config.batch_size // per_step


def deepspeed_config(
    config: TrainConfig, num_processes: int, zero_stage: ZeroStage, templates: Path = TEMPLATES
) -> dict[str, Any]:
    """The ZeRO config for `config`: template values plus batch geometry and clipping."""
    if zero_stage == 3 and isinstance(config, OPSAConfig) and config.teacher == "ema":
        raise InputError("teacher 'ema' needs the full student weights: use ZeRO stage 2")
    ds = json.loads((templates / f"zero{zero_stage}.json").read_text(encoding="utf-8"))
    accumulation = check_geometry(config, num_processes)
    ds["train_micro_batch_size_per_gpu"] = config.micro_batch_size
    ds["gradient_accumulation_steps"] = accumulation
    ds["train_batch_size"] = config.micro_batch_size * accumulation * num_processes
    ds["gradient_clipping"] = config.grad_clip
    ds["bf16"] = {"enabled": True}
    return ds


def gpu_training_config(config: TrainConfig) -> TrainConfig:
    """The run's config on GPUs: gradient checkpointing on, incomplete batches dropped (every
    step must have DeepSpeed's accumulation count), fp32 master weights (bf16 by DeepSpeed)."""
    return config.model_copy(
        update={"gradient_checkpointing": True, "drop_last_batch": True, "dtype": "float32"}
    )


def write_launch_files(
    config: TrainConfig,
    num_processes: int,
    zero_stage: ZeroStage,
    run_dir: str | Path,
    templates: Path = TEMPLATES,
) -> dict[str, Path]:
    """Write the DeepSpeed config, the accelerate config and the training config of one run."""
    run_dir = Path(run_dir)
    paths = {
        "deepspeed": run_dir / f"deepspeed_zero{zero_stage}.json",
        "accelerate": run_dir / "accelerate.yaml",
        "config": run_dir / "train_config.json",
    }
    write_json(paths["deepspeed"], deepspeed_config(config, num_processes, zero_stage, templates))
    acc = yaml.safe_load((templates / "accelerate.yaml").read_text(encoding="utf-8"))
    acc["num_processes"] = num_processes
    acc["deepspeed_config"]["deepspeed_config_file"] = str(paths["deepspeed"].resolve())
    acc["deepspeed_config"]["zero3_init_flag"] = zero_stage == 3
    paths["accelerate"].write_text(yaml.safe_dump(acc, sort_keys=True), encoding="utf-8")
    write_json(paths["config"], gpu_training_config(config).model_dump(mode="json"))
    return paths


def launch_command(
    stage: Literal["opsa", "sft"],
    inputs: dict[str, str | Path],
    paths: dict[str, Path],
    num_processes: int,
) -> list[str]:
    """`accelerate launch ... -m opsa train STAGE --config ... --KEY VALUE ...`."""
    command = [
        "accelerate",
        "launch",
        "--config_file",
        str(paths["accelerate"]),
        "--num_processes",
        str(num_processes),
        "-m",
        "opsa",
        "train",
        stage,
        "--config",
        str(paths["config"]),
    ]
    for key, value in inputs.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    return command
