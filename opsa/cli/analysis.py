"""Steps of the paper's analyses."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from opsa.cli import (
    bool_arg,
    build_judge_from_args,
    json_arg,
    judge_args,
    model_arg,
    step,
    unique,
)
from opsa.errors import validated

if TYPE_CHECKING:
    from opsa.generation.engine import SamplingParams
    from opsa.jailbreak.settings import JailbreakSettings


def _token_divergence_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", type=Path, required=True, help="the base model (with c_h)")
    p.add_argument("--models", type=model_arg, nargs="+", required=True, help="NAME=DIR ...")
    p.add_argument("--rollouts", type=Path, required=True, help="the base model's generations")
    p.add_argument("--contexts", type=Path, required=True, help="the selected contexts")
    p.add_argument("--settings", type=json_arg, default={}, help="analysis settings as JSON")
    p.add_argument("--trust-remote-code", type=bool_arg, default=False)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--plot", type=Path, required=True)


@step("token-divergence", _token_divergence_args)
def _token_divergence(a: argparse.Namespace) -> None:
    """Per-position divergence of each model from the context-conditioned teacher."""
    from opsa.analysis.settings import TokenAnalysisSettings
    from opsa.analysis.token_divergence import analyse_token_divergence
    from opsa.report.token_divergence import plot_token_divergence

    models = unique(a.models, "--models")
    settings = validated(TokenAnalysisSettings, a.settings, "analysis.token_divergence")
    analyse_token_divergence(
        a.teacher, models, a.rollouts, a.contexts, settings, a.out, a.trust_remote_code
    )
    plot_token_divergence(a.out, a.plot)


def _jailbreak_settings(a: argparse.Namespace) -> JailbreakSettings:
    from opsa.jailbreak.settings import JailbreakSettings

    return validated(JailbreakSettings, a.settings, "analysis.jailbreak")


def _sampling(settings: JailbreakSettings, key: str, seed: int) -> SamplingParams:
    """`analysis.jailbreak.<key>` (sampling or attacker_sampling) as decoding settings."""
    from opsa.generation.engine import SamplingParams

    sampling = {"seed": seed, **getattr(settings, key)}
    return validated(SamplingParams, sampling, f"analysis.jailbreak.{key}")


def _jailbreak_attacks_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--attack", choices=["prefilling", "templates"], required=True)
    p.add_argument("--prompts", type=Path, required=True, help="a prepared eval_harmful set")
    p.add_argument("--settings", type=json_arg, default={}, help="analysis.jailbreak as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)


@step("jailbreak-attacks", _jailbreak_attacks_args)
def _jailbreak_attacks(a: argparse.Namespace) -> None:
    """One attack's prompts: a row per behaviour and attempt."""
    from opsa.jailbreak.attacks import build_attacks

    build_attacks(a.prompts, a.attack, _jailbreak_settings(a), a.seed, a.out)


def _jailbreak_paraphrase_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompts", type=Path, required=True, help="a prepared eval_harmful set")
    p.add_argument("--attacker", type=Path, required=True, help="the attacker model")
    p.add_argument("--settings", type=json_arg, default={}, help="analysis.jailbreak as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trust-remote-code", type=bool_arg, default=False)
    p.add_argument("--out", type=Path, required=True)


@step("jailbreak-paraphrase", _jailbreak_paraphrase_args)
def _jailbreak_paraphrase(a: argparse.Namespace) -> None:
    """The PAP attack's prompts: the attacker's persuasive paraphrases of each behaviour."""
    from opsa.jailbreak.persuasion import build_pap

    settings = _jailbreak_settings(a)
    params = _sampling(settings, "attacker_sampling", a.seed)
    build_pap(a.prompts, a.attacker, settings, params, a.seed, a.out, a.trust_remote_code)


def _jailbreak_generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--attacks", type=Path, required=True, help="an attack's prompts")
    p.add_argument("--settings", type=json_arg, default={}, help="analysis.jailbreak as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trust-remote-code", type=bool_arg, default=False)
    p.add_argument("--out", type=Path, required=True)


@step("jailbreak-generate", _jailbreak_generate_args)
def _jailbreak_generate(a: argparse.Namespace) -> None:
    """A model's replies to an attack's prompts, one per attempt."""
    from opsa.jailbreak.run import run_attack

    params = _sampling(_jailbreak_settings(a), "sampling", a.seed)
    run_attack(a.model, a.attacks, a.out, params, a.trust_remote_code)


def _jailbreak_pair_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True, help="the target model")
    p.add_argument("--attacker", type=Path, required=True, help="the attacker model")
    p.add_argument("--prompts", type=Path, required=True, help="a prepared eval_harmful set")
    p.add_argument("--settings", type=json_arg, default={}, help="analysis.jailbreak as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trust-remote-code", type=bool_arg, default=False)
    judge_args(p)


@step("jailbreak-pair", _jailbreak_pair_args)
def _jailbreak_pair(a: argparse.Namespace) -> None:
    """PAIR against one model: attacker proposes, target answers, judge scores, R rounds."""
    from opsa.jailbreak.pair import run_pair

    settings = _jailbreak_settings(a)
    run_pair(
        a.model,
        a.attacker,
        build_judge_from_args(a),
        a.prompts,
        settings,
        _sampling(settings, "attacker_sampling", a.seed),
        _sampling(settings, "sampling", a.seed),
        a.seed,
        a.out,
        a.trust_remote_code,
    )


def run_arg(text: str) -> tuple[tuple[str, str], Path]:
    key, sep, path = text.partition("=")
    variant, colon, attack = key.partition(":")
    if not (sep and colon and variant and attack and path):
        raise argparse.ArgumentTypeError(f"'{text}': expected VARIANT:ATTACK=JUDGMENTS")
    return (variant, attack), Path(path)


def _jailbreak_score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="the policy's name")
    p.add_argument(
        "--judgments", type=run_arg, nargs="+", required=True, help="VARIANT:ATTACK=FILE ..."
    )
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--plot", type=Path, required=True)


@step("jailbreak-score", _jailbreak_score_args)
def _jailbreak_score(a: argparse.Namespace) -> None:
    """Attack success rate and pass@N per attack and variant, and their plot."""
    from opsa.jailbreak.score import score_jailbreaks
    from opsa.report.jailbreak import plot_jailbreaks

    score_jailbreaks(unique(a.judgments, "--judgments"), a.model, a.out, a.bootstrap, a.seed)
    plot_jailbreaks(a.out, a.plot)


def _flip_rate_outcome_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--evals", type=Path, nargs="+", required=True)
    p.add_argument(
        "--contexts",
        type=model_arg,
        nargs="+",
        required=True,
        help="VARIANT=CONTEXTS_FILE: the contexts each OPSA variant trained with",
    )
    p.add_argument("--ranking", type=Path, required=True, help="the context search's ranking")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--plot", type=Path, required=True)


@step("flip-rate-outcome", _flip_rate_outcome_args)
def _flip_rate_outcome(a: argparse.Namespace) -> None:
    """Harmful compliance after training against the training context's flip rate."""
    from opsa.report.flip_rate_outcome import flip_rate_outcome, plot_flip_rate_outcome

    flip_rate_outcome(a.evals, unique(a.contexts, "--contexts"), a.ranking, a.out)
    plot_flip_rate_outcome(a.out, a.plot)
