"""Steps of training: any method of METHODS, SafeSteer's direction and tokens, and the
baselines' (prompt, response) pairs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from opsa.cli import (
    build_judge_from_args,
    json_arg,
    judge_args,
    step,
    unique,
)
from opsa.errors import validated
from opsa.hub import hub_offline


def _train_args(p: argparse.ArgumentParser) -> None:
    from opsa.training.methods import METHODS

    p.add_argument("method", choices=list(METHODS), help="a training method (METHODS)")
    p.add_argument("--config", required=True, help="training settings: a JSON file or JSON text")
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="data-parallel processes: over 1, relaunches itself under accelerate launch",
    )
    p.add_argument("--model-dir", type=Path, required=True, help="the initial model")
    p.add_argument("--out", type=Path, required=True, help="the trained model's folder")
    p.add_argument("--work-dir", type=Path, required=True, help="checkpoints for resuming")
    p.add_argument(
        "--input",
        type=input_arg,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="one of the method's named input files (every one is required)",
    )


def input_arg(text: str) -> tuple[str, Path]:
    """NAME=PATH: a named input file of a training method."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"'{text}': expected NAME=PATH")
    return name, Path(path)


@step("train", _train_args)
def _train(a: argparse.Namespace) -> None:
    """Full-parameter training by any method of opsa.training.methods.METHODS.

    The same command runs on every GPU under `accelerate launch` (opsa.training.launch)."""
    from opsa.records import read_json
    from opsa.training.methods import METHODS

    method = METHODS[a.method]
    inputs = method.check_inputs(unique(a.input, "--input"))
    is_file = not a.config.lstrip().startswith("{")
    data = read_json(a.config) if is_file else json.loads(a.config)
    config = method.parse_config(data, inputs, a.config if is_file else "training")
    if a.processes > 1:
        from opsa.training.launch import launch_training

        launch_training(method.name, config, inputs, a.processes, a.model_dir, a.out, a.work_dir)
    else:
        method.train(a.model_dir, inputs, config, a.out, a.work_dir)


def _steering_direction_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--harmful", type=Path, required=True, help="harmful prompts")
    p.add_argument("--harmless", type=Path, required=True, help="harmless prompts")
    p.add_argument("--settings", type=json_arg, default={}, help="training.safesteer.direction")
    p.add_argument("--out", type=Path, required=True, help="the direction (.safetensors)")
    p.add_argument("--scan", type=Path, help="the (layer, position) scan's scores (.json)")


@step("steering-direction", _steering_direction_args)
def _steering_direction(a: argparse.Namespace) -> None:
    """SafeSteer's refusal direction: harmful minus harmless mean hidden state, at the layer and
    position the scan chooses (with --scan) or the configured ones."""
    from opsa.steering.direction import DirectionSettings, write_direction

    settings = validated(DirectionSettings, a.settings, "training.safesteer.direction")
    write_direction(a.model_dir, a.harmful, a.harmless, settings, a.out, scan_out=a.scan)


def _steered_teacher_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--direction", type=Path, required=True)
    p.add_argument("--baseline", type=Path, required=True, help="the judged flip-rate baseline")
    p.add_argument("--coefficient", type=float, required=True, help="the one training uses")
    p.add_argument("--settings", type=json_arg, default={}, help="training.safesteer.teacher")
    p.add_argument("--sampling", type=json_arg, default={}, help="contexts.sampling")
    p.add_argument("--seed", type=int, default=0, help="the bootstrap's seed")
    judge_args(p)


@step("steered-teacher", _steered_teacher_args)
def _steered_teacher(a: argparse.Namespace) -> None:
    """SafeSteer's steered teacher on the selection split at each coefficient, and its gate:
    no SafeSteer training starts after a failing teacher unless the gate is overridden."""
    from opsa.generation.engine import SamplingParams
    from opsa.steering.teacher import SteeredTeacherCheck, check_steered_teacher

    check = validated(SteeredTeacherCheck, a.settings, "training.safesteer.teacher")
    sampling = validated(SamplingParams, a.sampling, "contexts.sampling")
    judge = build_judge_from_args(a)
    check_steered_teacher(
        a.model_dir, a.direction, a.baseline, judge, sampling, a.coefficient, check, a.out,
        seed=a.seed,
    )  # fmt: skip


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
    p.add_argument("--no-filter", action="store_true", help="keep unsafe responses too")
    judge_args(p)


@step("offpolicy-pairs", _offpolicy_pairs_args)
def _offpolicy_pairs(a: argparse.Namespace) -> None:
    """The off-policy baseline's data: the base model answers with the contexts; unsafe
    answers to harmful prompts are dropped."""
    from opsa.baselines.offpolicy import build_offpolicy_pairs
    from opsa.generation.engine import SamplingParams

    judge = build_judge_from_args(a)
    sampling = validated(SamplingParams, a.sampling, "training.offpolicy.sampling")
    build_offpolicy_pairs(
        a.model_dir, a.harmful, a.benign, a.contexts, judge, sampling, a.out,
        filter_unsafe=not a.no_filter,
    )  # fmt: skip


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
    from opsa.baselines.external import external_pairs

    external_pairs(source, a.out, a.n, a.seed)
