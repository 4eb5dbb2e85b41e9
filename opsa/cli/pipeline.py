"""Steps of the evaluation pipeline: models, data, generation, judges, evaluation, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from opsa.cli import (
    bool_arg,
    json_arg,
    judge_args,
    model_arg,
    optional_path,
    step,
    unique,
)
from opsa.errors import validated
from opsa.hub import hub_offline


def _check_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("configfiles", type=Path, nargs="+", help="merged in order, as --configfile")
    p.add_argument("--schema", type=Path, default=None, help="default: the workflow's schema")


@step("check-config", _check_config_args)
def _check_config(a: argparse.Namespace) -> None:
    """The checks the Snakefile runs, on config files; also names the line of a YAML syntax
    error in a file given with --configfile, which Snakemake reports without it."""
    from opsa.config import load_config_files, validate_config

    validate_config(load_config_files(a.configfiles), a.schema)
    print(f"{', '.join(map(str, a.configfiles))}: config is valid")


def _prepare_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", type=json_arg, required=True, help="a `models:` entry as JSON")
    p.add_argument("--out", type=Path, required=True)


@step("prepare-model", _prepare_model_args)
def _prepare_model(a: argparse.Namespace) -> None:
    from opsa.models.reference import ModelSpec, kind_of

    spec = validated(ModelSpec, a.spec, "models entry")
    if kind_of(spec.source) == "hub":
        hub_offline()  # before transformers is imported: see opsa.hub
    from opsa.models.prepare import prepare_model

    prepare_model(spec, a.out)


def _prepare_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, help="the set's name (a key of `datasets:`)")
    p.add_argument("--spec", type=json_arg, required=True, help="its `datasets:` entry as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--decontaminate",
        type=Path,
        nargs="*",
        default=[],
        help="prepared training sets whose prompts this evaluation set must not contain",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--provenance", type=Path, required=True)


@step("prepare-data", _prepare_data_args)
def _prepare_data(a: argparse.Namespace) -> None:
    """One prompt set from its sources; evaluation sets lose prompts found in training sets."""
    from opsa.data.prepare import SetSpec, prepare_set

    spec = validated(SetSpec, a.spec, f"datasets.{a.name}")
    if any(source.hub for source in spec.sources):
        hub_offline()  # before datasets is imported: see opsa.hub
    prepare_set(a.name, spec, a.out, a.provenance, a.seed, a.decontaminate)


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


def _judge_stage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generations", type=Path, required=True)
    judge_args(p)


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
    judge_args(p)


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
    p.add_argument("--code-limits", type=json_arg, default={}, help="code sets: ExecLimits JSON")
    p.add_argument("--training-seed", type=int, default=None, help="a trained variant's seed")


@step("evaluate", _evaluate_args)
def _evaluate(a: argparse.Namespace) -> None:
    """Metric with a bootstrap interval for one model on one prompt set."""
    from opsa.evaluation.code_exec import ExecLimits
    from opsa.evaluation.evaluate import evaluate_set

    evaluate_set(
        a.role,
        a.prompts,
        a.generations,
        a.judgments,
        a.out,
        a.model,
        a.variant,
        a.dataset,
        answer_type=a.answer_type,
        bootstrap=a.bootstrap,
        seed=a.seed,
        items_path=a.items,
        code_limits=validated(ExecLimits, a.code_limits, "--code-limits"),
        training_seed=a.training_seed,
    )


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--evals", type=Path, nargs="+", required=True)
    p.add_argument(
        "--token-divergence", type=Path, nargs="*", default=[], help="token-level analyses"
    )
    p.add_argument("--jailbreak", type=Path, nargs="*", default=[], help="jailbreak analyses")
    p.add_argument("--training-curves", type=Path, nargs="*", default=[], help="curve plots")
    p.add_argument("--size-sweep", type=Path, nargs="*", default=[], help="size sweeps")
    p.add_argument(
        "--flip-rate-outcome", type=Path, nargs="*", default=[], help="TFR against outcome"
    )
    p.add_argument(
        "--safesteer", type=Path, nargs="*", default=[], help="SafeSteer token tables (.md)"
    )
    p.add_argument(
        "--baseline", default="offpolicy_sd", help="the method every other is compared to"
    )
    p.add_argument("--teachers", type=Path, nargs="*", default=[], help="teachers.json files")
    p.add_argument(
        "--direction-scans", type=Path, nargs="*", default=[], help="SafeSteer direction scans"
    )
    p.add_argument(
        "--steered-teachers", type=Path, nargs="*", default=[], help="SafeSteer's teachers"
    )
    p.add_argument("--judges", type=json_arg, default={}, help="the judges in use, as JSON")
    p.add_argument(
        "--judge-validations", type=Path, nargs="*", default=[], help="judge_validation files"
    )
    p.add_argument("--jailbreak-judge", default="", help="the jailbreak analysis's judge")
    for name in ("csv", "json", "paired", "md", "plot"):
        p.add_argument(f"--out-{name}", type=Path, required=True)


@step("report", _report_args)
def _report(a: argparse.Namespace) -> None:
    """Summary table (csv, md), paired comparisons against a baseline, a section per
    analysis, and the safety-against-reasoning plot."""
    from opsa.report import (
        flip_rate_outcome,
        jailbreak,
        judges,
        safesteer,
        size_sweep,
        teachers,
        token_divergence,
        training_curves,
    )
    from opsa.report.evaluations import read_evaluations
    from opsa.report.summary import ReportFiles, write_report

    analyses = [
        (token_divergence, a.token_divergence),
        (jailbreak, a.jailbreak),
        (size_sweep, a.size_sweep),
        (flip_rate_outcome, a.flip_rate_outcome),
        (safesteer, a.safesteer),
        (training_curves, a.training_curves),
    ]
    sections = [module.markdown_section(paths) for module, paths in analyses if paths]
    if a.direction_scans:
        sections.append(safesteer.scan_section(a.direction_scans))
    if a.steered_teachers:
        sections.insert(0, safesteer.teacher_section(a.steered_teachers))
    if a.teachers:
        sections.insert(0, teachers.markdown_section(a.teachers))
    warnings = teachers.warnings(a.teachers) + safesteer.scan_warnings(a.direction_scans)
    warnings += safesteer.teacher_warnings(a.steered_teachers)
    records, jailbreak_judge = read_evaluations(a.evals), a.jailbreak_judge or None
    if a.judges:
        sections.insert(
            0, judges.markdown_section(records, a.judges, a.judge_validations, jailbreak_judge)
        )
        warnings += judges.warning(records, a.judges, jailbreak_judge)
    extra = {"teachers": teachers.metrics(a.teachers)} if a.teachers else {}
    if a.steered_teachers:
        extra["steered_teachers"] = safesteer.teacher_metrics(a.steered_teachers)
    outs = ReportFiles(a.out_csv, a.out_json, a.out_paired, a.out_md, a.out_plot)
    write_report(a.evals, outs, sections, a.baseline, warnings, extra)


def _training_curves_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", type=model_arg, nargs="+", required=True, help="NAME=DIR ...")
    p.add_argument("--out", type=Path, required=True)


@step("training-curves", _training_curves_args)
def _training_curves(a: argparse.Namespace) -> None:
    """Loss, gradient norm, learning rate and tokens per step of each trained variant."""
    from opsa.report.training_curves import plot_training_curves

    plot_training_curves(unique(a.models, "--models"), a.out)


def sweep_point(text: str) -> tuple[str, tuple[str, float]]:
    variant, sep, point = text.partition("=")
    method, colon, share = point.partition(":")
    try:
        return variant, (method, float(share))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': expected VARIANT=METHOD:SHARE") from None


def _size_sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--evals", type=Path, nargs="+", required=True)
    p.add_argument(
        "--points",
        type=sweep_point,
        nargs="+",
        required=True,
        help="VARIANT=METHOD:SHARE ... (base=base:0 for the reference)",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--plot", type=Path, required=True)


@step("size-sweep", _size_sweep_args)
def _size_sweep(a: argparse.Namespace) -> None:
    """Safety and reasoning of each method against the share of training items it used."""
    from opsa.report.size_sweep import plot_size_sweep, size_sweep

    size_sweep(a.evals, dict(a.points), a.out)
    plot_size_sweep(a.out, a.plot)


def _grid_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--evals", type=Path, nargs="+", required=True)
    p.add_argument("--method", required=True, help="the trained method, e.g. opsa")
    p.add_argument("--baseline", required=True, help="the method it is compared to")
    p.add_argument(
        "--published", type=json_arg, default={}, help="published gains as JSON {model: points}"
    )
    p.add_argument("--source", default="", help="where the published gains come from")
    p.add_argument("--out-csv", type=Path, required=True)
    p.add_argument("--out-md", type=Path, required=True)


@step("grid-report", _grid_report_args)
def _grid_report(a: argparse.Namespace) -> None:
    """Per model: composite gain of a method over a baseline across seeds, beside published."""
    from opsa.report.grid import write_grid_report

    write_grid_report(a.evals, a.out_csv, a.out_md, a.method, a.baseline, a.published, a.source)


def _export_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True, help="a trained model folder")
    p.add_argument("--evals", type=Path, nargs="+", required=True, help="its evaluation records")
    p.add_argument("--out", type=Path, required=True, help="the folder to share")


@step("export-model", _export_model_args)
def _export_model(a: argparse.Namespace) -> None:
    """A trained model folder ready to share: its card completed with its evaluation."""
    from opsa.report.export import export_model

    export_model(a.model_dir, a.evals, a.out)


def _compare_runs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reference", type=Path, default=Path("."), help="the reference run's folder")
    p.add_argument(
        "--arm", type=model_arg, action="append", required=True, metavar="NAME=DIR",
        help="an arm's name and its run directory (repeatable)",
    )  # fmt: skip
    p.add_argument("--method", required=True, help="the method both runs trained, e.g. opsa")
    p.add_argument("--out", type=Path, help="write the markdown table here (default: stdout)")


@step("compare-runs", _compare_runs_args)
def _compare_runs(a: argparse.Namespace) -> None:
    """A method's variants in arm runs (sensitivity overlays, filter arms) against a reference
    run's, paired per seed and across seeds (opsa.report.compare_runs)."""
    from opsa.records import atomic_path
    from opsa.report.compare_runs import markdown

    table = markdown(a.reference, unique(a.arm, "--arm"), a.method)
    if a.out is None:
        print(table, end="")
        return
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(a.out) as tmp:
        tmp.write_text(table, encoding="utf-8")
