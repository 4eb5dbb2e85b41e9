"""Steps of the paper's analyses."""

from __future__ import annotations

import argparse
from pathlib import Path

from opsa.cli import bool_arg, json_arg, step
from opsa.errors import InputError, validated


def model_arg(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"'{text}': expected NAME=DIR")
    return name, Path(path)


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

    models = dict(a.models)
    if len(models) != len(a.models):
        raise InputError("--models: a model name is given twice")
    settings = validated(TokenAnalysisSettings, a.settings, "analysis.token_divergence")
    analyse_token_divergence(
        a.teacher, models, a.rollouts, a.contexts, settings, a.out, a.trust_remote_code
    )
    plot_token_divergence(a.out, a.plot)
