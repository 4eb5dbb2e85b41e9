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
from opsa.errors import InputError, validated
from opsa.hub import hub_offline


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "method",
        choices=["opsa", "safesteer", "sft"],
        help="on-policy distillation with a context teacher or a steered one, or SFT",
    )
    p.add_argument("--config", required=True, help="training settings: a JSON file or JSON text")
    p.add_argument("--model-dir", type=Path, required=True, help="the initial model")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--work-dir", type=Path, required=True, help="checkpoints for resuming")
    p.add_argument("--harmful", type=Path, help="opsa, safesteer: harmful training prompts")
    p.add_argument("--benign", type=Path, help="opsa: benign training prompts")
    p.add_argument("--contexts", type=Path, help="opsa: the selected contexts (selected.json)")
    p.add_argument("--direction", type=Path, help="safesteer: the refusal direction")
    p.add_argument(
        "--safety-tokens", type=Path, help="safesteer: the token set (else config token_ids)"
    )
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
    from opsa.training.config import OPSAConfig, SafeSteerConfig, SFTConfig, parse_config

    is_file = not a.config.lstrip().startswith("{")
    data = read_json(a.config) if is_file else json.loads(a.config)
    where = a.config if is_file else "training"
    classes = {"opsa": OPSAConfig, "safesteer": SafeSteerConfig, "sft": SFTConfig}
    if a.method == "safesteer":
        data = with_safety_tokens(data, a.safety_tokens, where)
    config = parse_config(classes[a.method], data, where)
    if a.processes > 1:
        from opsa.training.launch import launch_training

        names = ["model_dir", "out_dir", "work_dir", *METHOD_INPUTS[a.method]]
        inputs = {name: getattr(a, name) for name in names}
        launch_training(a.method, config, inputs, a.processes, a.work_dir)
    elif a.method == "opsa":
        from opsa.training.onpolicy import train_opsa

        train_opsa(a.model_dir, a.harmful, a.benign, a.contexts, config, a.out_dir, a.work_dir)
    elif a.method == "safesteer":
        from opsa.training.safesteer import train_safesteer

        train_safesteer(a.model_dir, a.harmful, a.direction, config, a.out_dir, a.work_dir)
    else:
        from opsa.training.sft import train_sft

        train_sft(a.model_dir, a.pairs, config, a.out_dir, a.work_dir)


# the inputs each method's processes are relaunched with (safesteer's token ids travel in
# the config the launcher writes)
METHOD_INPUTS = {
    "opsa": ["harmful", "benign", "contexts"],
    "safesteer": ["harmful", "direction"],
    "sft": ["pairs"],
}


def with_safety_tokens(data: dict, tokens_path: Path | None, where: str) -> dict:
    """SafeSteer's token ids come from the selection file, or from the config (a relaunched
    process), never from both."""
    from opsa.steering.tokens import read_safety_token_ids

    if tokens_path is None:
        return data
    if data.get("token_ids") is not None:
        raise InputError(f"{where}: token_ids: given both here and by --safety-tokens")
    return {**data, "token_ids": read_safety_token_ids(tokens_path)}


def _steering_direction_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--harmful", type=Path, required=True, help="harmful prompts")
    p.add_argument("--harmless", type=Path, required=True, help="harmless prompts")
    p.add_argument("--settings", type=json_arg, default={}, help="training.safesteer.direction")
    p.add_argument("--out", type=Path, required=True, help="the direction (.safetensors)")


@step("steering-direction", _steering_direction_args)
def _steering_direction(a: argparse.Namespace) -> None:
    """SafeSteer's refusal direction: harmful minus harmless mean hidden state at one layer."""
    from opsa.steering.direction import DirectionSettings, write_direction

    settings = validated(DirectionSettings, a.settings, "training.safesteer.direction")
    write_direction(a.model_dir, a.harmful, a.harmless, settings, a.out)


def _safety_tokens_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--prompts", type=Path, required=True, help="the prompts that vote")
    p.add_argument("--direction", type=Path, required=True)
    p.add_argument("--coefficient", type=float, required=True)
    p.add_argument("--settings", type=json_arg, default={}, help="training.safesteer.tokens")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="the token set (.json)")
    p.add_argument("--summary", type=Path, required=True, help="the token table (.md)")


@step("safety-tokens", _safety_tokens_args)
def _safety_tokens(a: argparse.Namespace) -> None:
    """SafeSteer's safety tokens: the entries the steered model promotes most, by vote."""
    from opsa.steering.tokens import TokenSelection, write_token_set

    settings = validated(TokenSelection, a.settings, "training.safesteer.tokens")
    write_token_set(
        a.model_dir, a.prompts, a.direction, a.coefficient, settings, a.seed, a.out, a.summary
    )


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

    source = validated(SourceSpec, a.source, "training.external.source")
    if source.hub:
        hub_offline()  # before datasets is imported: see opsa.hub
    from opsa.training.sft import external_pairs

    external_pairs(source, a.out, a.n, a.seed)
