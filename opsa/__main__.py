"""`python -m opsa <step> ...`: the command line every Snakemake rule calls.

Each step parses its arguments, validates config values passed as JSON, and calls one package
function. A bad input ends the step with one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsa.errors import InputError

Handler = Callable[[argparse.Namespace], None]
STEPS: dict[str, tuple[Handler, Callable[[argparse.ArgumentParser], None]]] = {}


def step(
    name: str, setup: Callable[[argparse.ArgumentParser], None]
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        STEPS[name] = (handler, setup)
        return handler

    return register


def json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e.msg}") from None


def optional_path(text: str) -> Path | None:
    return None if text == "none" else Path(text)


def bool_arg(text: str) -> bool:
    return text.lower() in ("true", "1", "yes")


def _prepare_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", type=json_arg, required=True, help="a `models:` entry as JSON")
    p.add_argument("--out", type=Path, required=True)


@step("prepare-model", _prepare_model_args)
def _prepare_model(a: argparse.Namespace) -> None:
    from opsa.models.prepare import prepare_model
    from opsa.models.reference import ModelSpec

    prepare_model(validated(ModelSpec, a.spec, "models entry"), a.out)


def _prepare_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sets", type=json_arg, required=True, help="the `datasets:` block as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, required=True)


@step("prepare-data", _prepare_data_args)
def _prepare_data(a: argparse.Namespace) -> None:
    """Prompt sets from the configured sources, deduplicated between training and evaluation."""
    from opsa.data.prepare import SetSpec, prepare_data

    sets = {name: validated(SetSpec, spec, f"datasets.{name}") for name, spec in a.sets.items()}
    prepare_data(sets, a.out_dir, a.seed)


def _generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--prompts", type=Path, required=True)
    p.add_argument("--sampling", type=json_arg, default={})
    p.add_argument("--trust-remote-code", type=bool_arg, default=False)
    p.add_argument("--out", type=Path, required=True)


@step("generate", _generate_args)
def _generate(a: argparse.Namespace) -> None:
    from opsa.generation.engine import SamplingParams
    from opsa.generation.run import generate_responses

    params = validated(SamplingParams, a.sampling, "generation")
    generate_responses(a.model, a.prompts, a.out, params, a.trust_remote_code)


def _judge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--judge", required=True, help="the judge's name (a key of `judges:`)")
    p.add_argument("--spec", type=json_arg, required=True, help="its `judges:` entry as JSON")
    p.add_argument("--judge-model", type=optional_path, default=None, help="a path or 'none'")
    p.add_argument("--out", type=Path, required=True)


def _judge_stage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generations", type=Path, required=True)
    _judge_args(p)


@step("judge", _judge_stage_args)
def _judge(a: argparse.Namespace) -> None:
    """Label each generated response with one judge."""
    from opsa.judges.run import judge_responses
    from opsa.judges.spec import load_judge_spec

    spec = load_judge_spec(a.judge, a.spec)
    judge_responses(a.generations, a.out, a.judge, spec, a.judge_model)


def _validate_judge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labelled", type=Path, nargs="+", required=True)
    p.add_argument(
        "--reference-prefixes",
        default=None,
        help="a prefix list to report beside the judge: a phrase file or FILE.json:KEY",
    )
    _judge_args(p)


@step("validate-judge", _validate_judge_args)
def _validate_judge(a: argparse.Namespace) -> None:
    """Agreement and false-safe rate of a judge on labelled responses."""
    from opsa.judges.refusal import PrefixListJudge, read_prefix_list
    from opsa.judges.spec import load_judge_spec
    from opsa.judges.validate import validate_judge

    spec = load_judge_spec(a.judge, a.spec)
    reference = None
    if a.reference_prefixes:
        reference = PrefixListJudge(read_prefix_list(a.reference_prefixes), "reference_prefixes")
    validate_judge(a.labelled, a.judge, spec, a.judge_model, a.out, reference)


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


@step("train", _train_args)
def _train(a: argparse.Namespace) -> None:
    """Full-parameter training: OPSA, or SFT for the off-policy and external baselines.

    The same command runs on every GPU under `accelerate launch` (opsa.training.launch)."""
    from opsa.records import read_json
    from opsa.training.config import OPSAConfig, SFTConfig, parse_config

    is_file = not a.config.lstrip().startswith("{")
    data = read_json(a.config) if is_file else json.loads(a.config)
    where = a.config if is_file else "training"
    if a.method == "opsa":
        from opsa.training.onpolicy import train_opsa

        config = parse_config(OPSAConfig, data, where)
        train_opsa(a.model_dir, a.harmful, a.benign, a.contexts, config, a.out_dir, a.work_dir)
    else:
        from opsa.training.sft import train_sft

        train_sft(a.model_dir, a.pairs, parse_config(SFTConfig, data, where), a.out_dir, a.work_dir)


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
        a.model_dir, a.harmful, a.benign, a.n_harmful, a.n_benign, a.seed, sampling, a.out
    )


def _flip_score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--candidates", type=Path, required=True)
    p.add_argument("--baseline", type=Path, required=True)
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--sampling", type=json_arg, default={})
    p.add_argument("--seed", type=int, default=0)
    _judge_args(p)


@step("flip-score", _flip_score_args)
def _flip_score(a: argparse.Namespace) -> None:
    """Teacher flip rate and benign over-refusal of one shard of the candidate pool."""
    from opsa.contexts.flip_rate import score_candidates
    from opsa.generation.engine import SamplingParams

    judge = _build_judge(a)
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
    p.add_argument("--out-dir", type=Path, required=True)
    _judge_args(p)


@step("context-search", _context_search_args)
def _context_search(a: argparse.Namespace) -> None:
    """Iterative search: mutate and recombine the best contexts, rescore, repeat."""
    from opsa.contexts.search import SearchConfig, search_contexts
    from opsa.contexts.select import SelectionConfig
    from opsa.generation.engine import SamplingParams

    search_contexts(
        a.model_dir, a.candidates, a.scores, a.baseline, _build_judge(a),
        validated(SamplingParams, a.sampling, "contexts.sampling"),
        validated(SearchConfig, a.search, "contexts.search"),
        validated(SelectionConfig, a.selection, "contexts.selection"), a.out_dir,
    )  # fmt: skip


def _select_context_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scores", type=Path, nargs="*", default=[], help="none when pinned")
    p.add_argument("--candidates", type=Path, required=True)
    p.add_argument("--selection", type=json_arg, default={})
    p.add_argument("--out-dir", type=Path, required=True)


@step("select-context", _select_context_args)
def _select_context(a: argparse.Namespace) -> None:
    """c_h and c_b from the flip-rate ranking (or pinned ids): ranking.csv, selected.json."""
    from opsa.contexts.select import SelectionConfig, select_contexts

    selection = validated(SelectionConfig, a.selection, "contexts.selection")
    select_contexts(a.scores, a.candidates, selection, a.out_dir)


def _flip_plot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scores", type=Path, required=True)
    p.add_argument("--rate", choices=["tfr", "tfr_unsafe"], default="tfr")
    p.add_argument("--out", type=Path, required=True)


@step("flip-plot", _flip_plot_args)
def _flip_plot(a: argparse.Namespace) -> None:
    """Teacher flip rate by candidate and by placement, with intervals."""
    from opsa.report.flip_rate_plot import plot_flip_rates

    plot_flip_rates(a.scores, a.out, a.rate)


def _build_judge(a: argparse.Namespace) -> Any:
    from opsa.judges.spec import build_judge, load_judge_spec

    return build_judge(a.judge, load_judge_spec(a.judge, a.spec), a.judge_model)


def _offpolicy_pairs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--harmful", type=Path, required=True)
    p.add_argument("--benign", type=Path, required=True)
    p.add_argument("--contexts", type=Path, required=True, help="the selected contexts")
    p.add_argument("--sampling", type=json_arg, default={})
    _judge_args(p)


@step("offpolicy-pairs", _offpolicy_pairs_args)
def _offpolicy_pairs(a: argparse.Namespace) -> None:
    """The off-policy baseline's data: the base model answers with the contexts; unsafe
    answers to harmful prompts are dropped."""
    from opsa.generation.engine import SamplingParams
    from opsa.training.offpolicy import build_offpolicy_pairs

    judge = _build_judge(a)
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


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", required=True)
    p.add_argument("--prompts", type=Path, required=True)
    p.add_argument("--generations", type=Path, required=True)
    p.add_argument("--judgments", type=optional_path, default=None, help="a path or 'none'")
    p.add_argument("--answer-type", default=None)
    p.add_argument("--model", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--items", type=Path, default=None, help="per-item results (JSONL)")


@step("evaluate", _evaluate_args)
def _evaluate(a: argparse.Namespace) -> None:
    """Metric with a bootstrap interval for one model on one prompt set."""
    from opsa.evaluation.evaluate import evaluate_set

    evaluate_set(
        a.role, a.prompts, a.generations, a.judgments, a.out, a.model, a.variant, a.dataset,
        answer_type=a.answer_type, bootstrap=a.bootstrap, seed=a.seed, items_path=a.items,
    )  # fmt: skip


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--evals", type=Path, nargs="+", required=True)
    p.add_argument("--out-dir", type=Path, required=True)


@step("report", _report_args)
def _report(a: argparse.Namespace) -> None:
    """Summary table (csv, md) and the safety-against-reasoning plot."""
    from opsa.report.summary import write_report

    write_report(a.evals, a.out_dir)


def validated(model: type, data: Any, where: str) -> Any:
    """Build a pydantic model from config data; a bad key or value becomes one clear line."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(x) for x in err["loc"])
        raise InputError(f"{where}: key '{key}': {err['msg']}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsa", description=__doc__)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub = parser.add_subparsers(dest="step", required=True)
    for name, (handler, setup) in STEPS.items():
        p = sub.add_parser(name, help=(handler.__doc__ or "").strip() or None)
        setup(p)
        p.set_defaults(handler=handler)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        args.handler(args)
    except InputError as e:
        print(f"opsa {args.step}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
