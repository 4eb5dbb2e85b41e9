"""Steps of training: OPSA, SFT, and the baselines' (prompt, response) pairs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from opsa.cli import (
    build_judge_from_args,
    json_arg,
    judge_args,
    step,
)
from opsa.errors import validated


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("method", choices=["opsa", "sft"], help="on-policy distillation, or SFT")
    p.add_argument("--config", required=True, help="training settings: a JSON file or JSON text")
    p.add_argument("--model-dir", type=Path, required=True, help="the initial model")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--work-dir", type=Path, required=True, help="checkpoints for resuming")
    p.add_argument("--harmful", type=Path, help="opsa: harmful training prompts")
    p.add_argument("--benign", type=Path, help="opsa: benign training prompts")
    p.add_argument("--contexts", type=Path, help="opsa: the selected contexts (selected.json)")
    p.add_argument("--pairs", type=Path, help="sft: (prompt, response) pairs")
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="data-parallel processes: over 1, relaunches itself under accelerate launch",
    )


@step("train", _train_args)
def _train(a: argparse.Namespace) -> None:
    """Full-parameter training: OPSA, or SFT for the off-policy and external baselines.

    The same command runs on every GPU under `accelerate launch` (opsa.training.launch)."""
    from opsa.records import read_json
    from opsa.training.config import OPSAConfig, SFTConfig, parse_config

    is_file = not a.config.lstrip().startswith("{")
    data = read_json(a.config) if is_file else json.loads(a.config)
    where = a.config if is_file else "training"
    config = parse_config(OPSAConfig if a.method == "opsa" else SFTConfig, data, where)
    if a.processes > 1:
        from opsa.training.launch import launch_training

        names = ["model_dir", "out_dir", "work_dir"]
        names += ["harmful", "benign", "contexts"] if a.method == "opsa" else ["pairs"]
        inputs = {name: getattr(a, name) for name in names}
        launch_training(a.method, config, inputs, a.processes, a.work_dir)
    elif a.method == "opsa":
        from opsa.training.onpolicy import train_opsa

        train_opsa(a.model_dir, a.harmful, a.benign, a.contexts, config, a.out_dir, a.work_dir)
    else:
        from opsa.training.sft import train_sft

        train_sft(a.model_dir, a.pairs, config, a.out_dir, a.work_dir)


def _offpolicy_pairs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--harmful", type=Path, required=True)
    p.add_argument("--benign", type=Path, required=True)
    p.add_argument("--contexts", type=Path, required=True, help="the selected contexts")
    p.add_argument("--sampling", type=json_arg, default={})
    judge_args(p)


@step("offpolicy-pairs", _offpolicy_pairs_args)
def _offpolicy_pairs(a: argparse.Namespace) -> None:
    """The off-policy baseline's data: the base model answers with the contexts; unsafe
    answers to harmful prompts are dropped."""
    from opsa.generation.engine import SamplingParams
    from opsa.training.offpolicy import build_offpolicy_pairs

    judge = build_judge_from_args(a)
    sampling = validated(SamplingParams, a.sampling, "training.offpolicy.sampling")
    build_offpolicy_pairs(a.model_dir, a.harmful, a.benign, a.contexts, judge, sampling, a.out)


def _external_pairs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", type=json_arg, required=True, help="a prompt source, as JSON")
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)


@step("external-pairs", _external_pairs_args)
def _external_pairs(a: argparse.Namespace) -> None:
    """An external teacher's (prompt, response) pairs for the external-teacher baseline."""
    from opsa.data.sources import SourceSpec
    from opsa.training.sft import external_pairs

    external_pairs(validated(SourceSpec, a.source, "training.external.source"), a.out, a.n, a.seed)
