"""Steps of the privileged-context search: candidates, flip rates, selection, plot."""

from __future__ import annotations

import argparse
from pathlib import Path

from opsa.cli import (
    build_judge_from_args,
    json_arg,
    judge_args,
    step,
)
from opsa.errors import validated


def _context_candidates_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", type=json_arg, required=True, help="`contexts.candidates` as JSON")
    p.add_argument("--model-dir", type=Path, required=True, help="whose chat template to check")
    p.add_argument("--out", type=Path, required=True)


@step("context-candidates", _context_candidates_args)
def _context_candidates(a: argparse.Namespace) -> None:
    """The pool of candidate privileged contexts, checked against the chat template."""
    from opsa.contexts.candidates import CandidatesConfig, build_candidates

    spec = dict(a.spec)
    if spec.get("generated"):  # candidates written by the policy model itself
        spec["generated"] = {"model_dir": str(a.model_dir), **spec["generated"]}
    build_candidates(validated(CandidatesConfig, spec, "contexts.candidates"), a.model_dir, a.out)


def _flip_baseline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--harmful", type=Path, required=True)
    p.add_argument("--benign", type=Path, required=True)
    p.add_argument("--n-harmful", type=int, required=True)
    p.add_argument("--n-benign", type=int, required=True)
    p.add_argument("--borderline", type=Path, help="borderline benign prompts (diagnostics)")
    p.add_argument("--n-borderline", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampling", type=json_arg, default={})
    p.add_argument("--out", type=Path, required=True)


@step("flip-baseline", _flip_baseline_args)
def _flip_baseline(a: argparse.Namespace) -> None:
    """The base model's answers without any context, shared by every candidate's scoring."""
    from opsa.contexts.flip_rate import baseline_generations
    from opsa.generation.engine import SamplingParams

    sampling = validated(SamplingParams, a.sampling, "contexts.sampling")
    baseline_generations(
        a.model_dir, a.harmful, a.benign, a.n_harmful, a.n_benign, a.seed, sampling, a.out,
        a.borderline, a.n_borderline,
    )  # fmt: skip


def _flip_judge_baseline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baseline", type=Path, required=True)
    p.add_argument("--sampling", type=json_arg, default={})
    judge_args(p)


@step("flip-judge-baseline", _flip_judge_baseline_args)
def _flip_judge_baseline(a: argparse.Namespace) -> None:
    """The no-context answers judged once, for every scoring shard and search round."""
    from opsa.contexts.flip_rate import judge_baseline
    from opsa.generation.engine import SamplingParams

    sampling = validated(SamplingParams, a.sampling, "contexts.sampling")
    judge_baseline(a.baseline, build_judge_from_args(a), sampling, a.out)


def _flip_score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--candidates", type=Path, required=True)
    p.add_argument("--baseline", type=Path, required=True)
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--sampling", type=json_arg, default={})
    p.add_argument("--seed", type=int, default=0)
    judge_args(p)


@step("flip-score", _flip_score_args)
def _flip_score(a: argparse.Namespace) -> None:
    """Teacher flip rate and benign over-refusal of one shard of the candidate pool."""
    from opsa.contexts.flip_rate import score_candidates
    from opsa.generation.engine import SamplingParams

    judge = build_judge_from_args(a)
    sampling = validated(SamplingParams, a.sampling, "contexts.sampling")
    score_candidates(
        a.model_dir, a.candidates, a.baseline, judge, sampling, a.out,
        shard=(a.shard, a.shards), bootstrap_seed=a.seed,
    )  # fmt: skip


def _flip_merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scores", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)


@step("flip-merge", _flip_merge_args)
def _flip_merge(a: argparse.Namespace) -> None:
    """One flip-rate table from the scoring shards."""
    from opsa.contexts.flip_rate import merge_shards

    merge_shards(a.scores, a.out)


def _context_search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--candidates", type=Path, required=True)
    p.add_argument("--scores", type=Path, required=True)
    p.add_argument("--baseline", type=Path, required=True)
    p.add_argument("--search", type=json_arg, required=True)
    p.add_argument("--selection", type=json_arg, default={})
    p.add_argument("--sampling", type=json_arg, default={})
    p.add_argument("--out-scores", type=Path, required=True, help="the grown pool's flip rates")
    judge_args(p)  # --out: the grown pool


@step("context-search", _context_search_args)
def _context_search(a: argparse.Namespace) -> None:
    """Iterative search: mutate and recombine the best contexts, rescore, repeat."""
    from opsa.contexts.search import SearchConfig, search_contexts
    from opsa.contexts.select import SelectionConfig
    from opsa.generation.engine import SamplingParams

    search_contexts(
        a.model_dir, a.candidates, a.scores, a.baseline, build_judge_from_args(a),
        validated(SamplingParams, a.sampling, "contexts.sampling"),
        validated(SearchConfig, a.search, "contexts.search"),
        validated(SelectionConfig, a.selection, "contexts.selection"),
        a.out, a.out_scores,
    )  # fmt: skip


def _select_context_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scores", type=Path, nargs="*", default=[], help="none when pinned")
    p.add_argument("--candidates", type=Path, required=True)
    p.add_argument("--selection", type=json_arg, default={})
    p.add_argument("--out", type=Path, required=True, help="the selected contexts (.json)")
    p.add_argument("--ranking", type=Path, required=True, help="the ranking table (.csv)")
    p.add_argument("--teachers", type=Path, required=True, help="the teacher points (.json)")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples of the pair's point")
    p.add_argument("--seed", type=int, default=0)


@step("select-context", _select_context_args)
def _select_context(a: argparse.Namespace) -> None:
    """c_h and c_b from the flip-rate ranking among the teachers that pass the gate (or pinned
    ids): ranking.csv, teachers.json, selected.json."""
    from opsa.contexts.select import SelectionConfig, select_contexts

    selection = validated(SelectionConfig, a.selection, "contexts.selection")
    select_contexts(
        a.scores, a.candidates, selection, a.out, a.ranking, a.teachers, a.bootstrap, a.seed
    )


def _ranked_context_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ranking", type=Path, required=True)
    p.add_argument("--selected", type=Path, required=True)
    p.add_argument("--candidates", type=Path, required=True)
    p.add_argument("--position", choices=["middle", "last"], required=True)
    p.add_argument("--out", type=Path, required=True)


@step("ranked-context", _ranked_context_args)
def _ranked_context(a: argparse.Namespace) -> None:
    """The context at the middle or last eligible rank, to train with (flip rate vs outcome)."""
    from opsa.contexts.select import ranked_context

    ranked_context(a.ranking, a.selected, a.candidates, a.position, a.out)


def _flip_plot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scores", type=Path, required=True)
    p.add_argument("--rate", choices=["tfr", "tfr_unsafe"], default="tfr")
    p.add_argument("--out", type=Path, required=True)


@step("flip-plot", _flip_plot_args)
def _flip_plot(a: argparse.Namespace) -> None:
    """Teacher flip rate by candidate and by placement, with intervals."""
    from opsa.contexts.flip_rate_plot import plot_flip_rates

    plot_flip_rates(a.scores, a.out, a.rate)


def _teacher_plot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teachers", type=Path, required=True)
    p.add_argument("--steered", type=Path, default=None, help="SafeSteer's steered teacher")
    p.add_argument("--out", type=Path, required=True)


@step("teacher-plot", _teacher_plot_args)
def _teacher_plot(a: argparse.Namespace) -> None:
    """Every candidate's teacher against the base, in the over-refusal/compliance plane."""
    from opsa.contexts.teacher_plot import plot_teachers

    plot_teachers(a.teachers, a.out, a.steered)
