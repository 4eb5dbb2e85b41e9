"""Training in several processes: `accelerate launch` of `python -m opsa train` under the
DeepSpeed ZeRO config on GPUs, or plain data parallel over gloo on CPUs.

The templates live in envs/deepspeed/ (zero2.json, zero3.json, accelerate.yaml for GPUs,
accelerate_cpu.yaml for CPUs); this module fills in the batch geometry, clipping, precision
and process count from a training config, writes the files for one run, and runs the command.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any, Literal

import torch
import yaml

from opsa.errors import InputError
from opsa.records import write_json
from opsa.training.config import OPSAConfig, TrainConfig
from opsa.training.methods import METHODS

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
    ds["bf16"] = {"enabled": config.mixed_precision == "bf16"}
    return ds


def gpu_training_config(config: TrainConfig) -> TrainConfig:
    """The run's config on GPUs: gradient checkpointing on, incomplete batches dropped (every
    step must have DeepSpeed's accumulation count)."""
    return config.model_copy(update={"gradient_checkpointing": True, "drop_last_batch": True})


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
    acc["mixed_precision"] = config.mixed_precision
    acc["deepspeed_config"]["deepspeed_config_file"] = str(paths["deepspeed"].resolve())
    acc["deepspeed_config"]["zero3_init_flag"] = zero_stage == 3
    paths["accelerate"].write_text(yaml.safe_dump(acc, sort_keys=True), encoding="utf-8")
    write_json(paths["config"], gpu_training_config(config).model_dump(mode="json"))
    return paths


def write_cpu_launch_files(
    config: TrainConfig, num_processes: int, run_dir: str | Path, templates: Path = TEMPLATES
) -> dict[str, Path]:
    """The accelerate config for data parallel on CPUs (gloo), and the run's training config."""
    run_dir = Path(run_dir)
    paths = {"accelerate": run_dir / "accelerate_cpu.yaml", "config": run_dir / "train_config.json"}
    acc = yaml.safe_load((templates / "accelerate_cpu.yaml").read_text(encoding="utf-8"))
    acc["num_processes"] = num_processes
    paths["accelerate"].write_text(yaml.safe_dump(acc, sort_keys=True), encoding="utf-8")
    write_json(paths["config"], config.model_dump(mode="json"))
    return paths


def launch_training(
    method: str,
    config: TrainConfig,
    inputs: dict[str, Path],
    num_processes: int,
    model_dir: str | Path,
    out: str | Path,
    work_dir: str | Path,
) -> None:
    """Run `opsa train METHOD` in `num_processes` processes and wait for them: DeepSpeed when
    this machine has GPUs, else DDP on CPUs (`ACCELERATE_USE_CPU`: accelerate then picks
    gloo). The launch files go to work_dir/launch/; `inputs` are the method's named files."""
    arguments = train_arguments(method, model_dir, out, work_dir, inputs)
    run_dir = Path(work_dir) / "launch"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if torch.cuda.is_available():
        paths = write_launch_files(config, num_processes, config.zero_stage, run_dir)
    else:
        paths = write_cpu_launch_files(config, num_processes, run_dir)
        env["ACCELERATE_USE_CPU"] = "1"
    command = launch_command(method, arguments, paths, num_processes)
    command[2:2] = ["--main_process_port", str(_free_port())]
    status = subprocess.run(command, env=env, check=False).returncode
    if status:
        raise InputError(
            f"training in {num_processes} processes failed (exit status {status}); "
            "the failing process's error is above"
        )


def train_arguments(
    method: str,
    model_dir: str | Path,
    out: str | Path,
    work_dir: str | Path,
    inputs: dict[str, Path],
) -> list[str]:
    """The `train METHOD` arguments every process runs with (besides --config): the model,
    the output folders and each of the method's inputs (METHODS)."""
    METHODS[method].check_inputs(inputs)
    arguments = ["--model-dir", str(model_dir), "--out", str(out), "--work-dir", str(work_dir)]
    for name in METHODS[method].inputs:
        arguments += ["--input", f"{name}={inputs[name]}"]
    return arguments


def _free_port() -> int:
    """A port no one listens on now, for the processes' rendezvous (parallel runs on one
    machine must not share accelerate's default)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_command(
    method: str,
    arguments: list[str],
    paths: dict[str, Path],
    num_processes: int,
) -> list[str]:
    """`accelerate launch ... -m opsa train METHOD --config ... ARGUMENTS`."""
    return [
        "accelerate",
        "launch",
        "--config_file",
        str(paths["accelerate"]),
        "--num_processes",
        str(num_processes),
        "-m",
        "opsa",
        "train",
        method,
        "--config",
        str(paths["config"]),
        *arguments,
    ]
