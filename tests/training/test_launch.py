"""The GPU path: DeepSpeed config and accelerate launch command (built and checked here; it
runs only on a GPU machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from opsa.cli import main as opsa_main
from opsa.errors import InputError
from opsa.training.config import OPSAConfig
from opsa.training.launch import (
    deepspeed_config,
    launch_command,
    train_arguments,
    write_cpu_launch_files,
    write_launch_files,
)
from opsa.training.methods import METHODS


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_config(stage):
    cfg = OPSAConfig(batch_size=64, micro_batch_size=4, grad_clip=0.5, mixed_precision="bf16")
    ds = deepspeed_config(cfg, num_processes=4, zero_stage=stage)
    assert ds["zero_optimization"]["stage"] == stage
    assert ds["bf16"] == {"enabled": True}  # bf16 compute over DeepSpeed's fp32 master
    no_mp = deepspeed_config(cfg.model_copy(update={"mixed_precision": "no"}), 4, stage)
    assert no_mp["bf16"] == {"enabled": False}
    assert ds["train_micro_batch_size_per_gpu"] == 4
    assert ds["gradient_accumulation_steps"] == 4
    assert ds["train_batch_size"] == 64
    assert ds["gradient_clipping"] == 0.5
    if stage == 3:
        assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_geometry_and_ema_rules():
    with pytest.raises(InputError, match="multiple of micro_batch_size"):
        deepspeed_config(OPSAConfig(batch_size=6, micro_batch_size=2), 2, 2)
    with pytest.raises(InputError, match="ZeRO stage 2"):
        deepspeed_config(OPSAConfig(teacher="ema"), 1, 3)


def test_launch_files_and_command(tmp_path, capsys):
    cfg = OPSAConfig(batch_size=8, micro_batch_size=2, mixed_precision="bf16")
    paths = write_launch_files(cfg, 2, 3, tmp_path)
    acc = yaml.safe_load(paths["accelerate"].read_text())
    assert acc["distributed_type"] == "DEEPSPEED" and acc["mixed_precision"] == "bf16"
    assert acc["num_processes"] == 2 and acc["deepspeed_config"]["zero3_init_flag"] is True
    assert acc["deepspeed_config"]["deepspeed_config_file"] == str(paths["deepspeed"].resolve())
    run_cfg = json.loads(paths["config"].read_text())
    assert run_cfg["gradient_checkpointing"] is True and run_cfg["drop_last_batch"] is True
    assert OPSAConfig.model_validate(run_cfg).batch_size == 8
    inputs = {"harmful": Path("h.jsonl"), "benign": Path("b.jsonl"), "contexts": Path("s.json")}
    cmd = launch_command("opsa", train_arguments("opsa", "m", "o", "w", inputs), paths, 2)
    assert cmd[:2] == ["accelerate", "launch"]
    assert cmd[cmd.index("--config_file") + 1] == str(paths["accelerate"])
    assert cmd[cmd.index("-m") + 1 : cmd.index("-m") + 4] == ["opsa", "train", "opsa"]
    assert cmd[cmd.index("--model-dir") + 1] == "m" and cmd[cmd.index("--out") + 1] == "o"
    given = [cmd[k + 1] for k, word in enumerate(cmd) if word == "--input"]
    assert given == ["harmful=h.jsonl", "benign=b.jsonl", "contexts=s.json"]
    # the command line parses exactly these arguments, and fails on the missing files
    assert opsa_main(cmd[cmd.index("-m") + 2 :]) == 1
    assert "file not found" in capsys.readouterr().err


def test_cpu_launch_files(tmp_path):
    """CPUs: torchrun through accelerate's multi-GPU launcher, each worker told to use the CPU
    (ACCELERATE_USE_CPU, set by launch_training), so accelerate joins them over gloo; no
    DeepSpeed. The 2-process run itself is tests/training/test_multiprocess.py (slow)."""
    cfg = OPSAConfig(batch_size=3, micro_batch_size=1)
    paths = write_cpu_launch_files(cfg, 2, tmp_path)
    acc = yaml.safe_load(paths["accelerate"].read_text())
    assert acc["distributed_type"] == "MULTI_GPU" and acc["num_processes"] == 2
    assert acc["use_cpu"] is False and "deepspeed_config" not in acc
    assert OPSAConfig.model_validate(json.loads(paths["config"].read_text())) == cfg


def test_train_rules_pass_the_process_count(tmp_path):
    """`training.num_processes`, overridden per model by `models.<name>.train_processes`,
    reaches the train rules' command (the dry run prints each shell command)."""
    root = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((root / "config/paper.yaml").read_text())
    config["training"]["num_processes"] = 4
    config["models"]["qwen3-0.6b"]["train_processes"] = 8
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    targets = ["results/models/qwen3-0.6b/opsa", "results/models/qwen3-1.7b/offpolicy_sd"]
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--configfile", str(path)]
        + ["--replace-workflow-config", *targets],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    commands = [line for line in run.stdout.splitlines() if " train " in line]
    by_model = {c.split("--model-dir ")[1].split()[0]: c for c in commands}
    assert "--processes 8" in by_model["results/models/qwen3-0.6b/base"]
    assert "--processes 4" in by_model["results/models/qwen3-1.7b/base"]


def test_a_relaunched_process_parses_the_written_config_again(tmp_path):
    """The launcher writes the validated config (SafeSteer's: with the token ids from its
    file); each relaunched process gets the same inputs and parses it to the same config."""
    tokens = tmp_path / "safety_tokens.json"
    tokens.write_text(json.dumps({"tokens": [{"id": 5}, {"id": 9}]}))
    inputs = {"harmful": tmp_path / "h", "direction": tmp_path / "d", "safety_tokens": tokens}
    method = METHODS["safesteer"]
    config = method.parse_config({"batch_size": 2, "micro_batch_size": 1}, inputs, "training")
    paths = write_cpu_launch_files(config, 2, tmp_path)
    written = json.loads(paths["config"].read_text())
    assert method.parse_config(written, inputs, str(paths["config"])) == config
    assert config.token_ids == [5, 9]
    arguments = train_arguments("safesteer", "m", "o", "w", inputs)
    assert arguments.count("--input") == 3 and f"safety_tokens={tokens}" in arguments
    with pytest.raises(InputError, match="--input direction=PATH: missing"):
        train_arguments("safesteer", "m", "o", "w", {"harmful": tmp_path / "h"})
