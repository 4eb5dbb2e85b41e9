"""The pipeline's config checked as a whole, before any rule runs.

The Snakefile calls `check_config_files` before Snakemake reads `config.yaml` and
`check_config` right after: every problem ends the run with one line naming the file and line
or the key path. In order: a YAML syntax error or a key given twice in a config file; the JSON
schema (which also fills in its defaults); each block against the package's own settings models
(the same ones the steps use later); and every name one block uses that another defines
(policies and judge models under `models:`, judges under `judges:`, the training sets).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError

from opsa.contexts import PACKAGE_GRIDS
from opsa.errors import InputError, first_error
from opsa.records import read_yaml

# keys of an analysis block that the workflow reads rather than the analysis step
ANALYSIS_KEYS = ("enabled", "dataset", "judge", "attacker")


def exit_with_one_line(e: InputError) -> NoReturn:
    """End the Snakemake run with the one line (Snakemake would add its own traceback)."""
    sys.exit(f"opsa config: error: {e}")


def check_config_files(paths: Iterable[str | Path]) -> None:
    """Read every existing config file strictly: a syntax error or a repeated key ends the run
    with one line naming the file and the line."""
    try:
        for path in paths:
            if Path(path).is_file():
                read_yaml(path)
    except InputError as e:
        exit_with_one_line(e)


def check_config(config: dict[str, Any], schema: str | Path) -> None:
    """Validate `config` against the schema (filling in its defaults), the settings models and
    its cross-references; the first problem ends the run with one line."""
    try:
        validate_config(config, schema)
    except InputError as e:
        exit_with_one_line(e)


def validate_config(config: dict[str, Any], schema: str | Path) -> None:
    """The schema (filling in its defaults), the settings models, the cross-references."""
    check_schema(config, schema)
    check_settings(config)
    check_references(config)
    check_local_files(config)


def load_config_files(paths: Iterable[str | Path]) -> dict[str, Any]:
    """The config that `--configfile` with these files gives: each read strictly, each
    updating the ones before it key by key, as Snakemake merges them."""
    from snakemake.utils import update_config

    merged: dict[str, Any] = {}
    for path in paths:
        content = read_yaml(path)
        if not isinstance(content, dict):
            raise InputError(f"{path}: a config file must be a mapping of keys")
        update_config(merged, content)
    return merged


def check_schema(config: dict[str, Any], schema_path: str | Path) -> None:
    """The JSON schema, with Snakemake's `validate` (which fills in the defaults); the first
    problem becomes one line: the key path and what is wrong."""
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema = read_yaml(schema_path)
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise InputError(_describe(error))
    try:
        validate(config, str(schema_path))
    except WorkflowError as e:  # not expected once the check above passed
        raise InputError(f"config: {str(e).strip().splitlines()[-1]}") from None


def _key_path(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return f"config key '{text}'" if text else "config"


def _describe(error: Any) -> str:
    """A jsonschema error as one line: the key path and the problem, without the instance
    that jsonschema prints in full."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = error.schema.get("properties", {})
        unknown = next(k for k in error.instance if k not in allowed)
        return f"{_key_path([*path, unknown])}: unknown key (allowed: {', '.join(allowed)})"
    if error.validator == "oneOf" and all("required" in o for o in error.validator_value):
        options = "; ".join(", ".join(o["required"]) for o in error.validator_value)
        return f"{_key_path(path)}: give exactly one of: {options}"
    if error.validator == "pattern" and "description" in error.schema:
        return f"{_key_path(path)}: {error.instance!r}: use {error.schema['description']}"
    if error.validator == "enum":
        options = ", ".join(map(str, error.validator_value))
        return f"{_key_path(path)}: {error.instance!r} is not one of {options}"
    message = " ".join(error.message.split())
    return f"{_key_path(path)}: {message if len(message) <= 200 else message[:197] + '...'}"


def check_settings(config: dict[str, Any]) -> None:
    """Each block against the settings model the step that uses it validates with, so a bad
    value fails now rather than after the steps before it ran."""
    from opsa.analysis.settings import JailbreakSettings, TokenAnalysisSettings
    from opsa.data.prepare import SetSpec
    from opsa.evaluation.code_exec import ExecLimits
    from opsa.generation.engine import SamplingParams
    from opsa.judges.spec import JudgeSpec
    from opsa.models.reference import ModelSpec
    from opsa.training.config import OPSAConfig, SFTConfig

    training = config["training"]
    analysis = config["analysis"]
    token = {k: v for k, v in analysis["token_divergence"].items() if k not in ANALYSIS_KEYS}
    jailbreak = {k: v for k, v in analysis["jailbreak"].items() if k not in ANALYSIS_KEYS}
    blocks: list[tuple[type[BaseModel], Any, tuple[str, ...]]] = [
        *((ModelSpec, spec, ("models", name)) for name, spec in config["models"].items()),
        *((SetSpec, spec, ("datasets", name)) for name, spec in config["datasets"].items()),
        *((JudgeSpec, spec, ("judges", name)) for name, spec in config["judges"].items()),
        (SamplingParams, config["generation"]["safety"], ("generation", "safety")),
        (SamplingParams, config["generation"]["reasoning"], ("generation", "reasoning")),
        (SamplingParams, config["generation"]["code"], ("generation", "code")),
        (ExecLimits, config["evaluation"]["code_execution"], ("evaluation", "code_execution")),
        (SamplingParams, config["contexts"]["sampling"], ("contexts", "sampling")),
        (SamplingParams, training["offpolicy"]["sampling"], ("training", "offpolicy", "sampling")),
        (TokenAnalysisSettings, token, ("analysis", "token_divergence")),
        (JailbreakSettings, jailbreak, ("analysis", "jailbreak")),
        (SamplingParams, jailbreak.get("sampling", {}), ("analysis", "jailbreak", "sampling")),
        (
            SamplingParams,
            jailbreak.get("attacker_sampling", {}),
            ("analysis", "jailbreak", "attacker_sampling"),
        ),
    ]
    # each method's settings: `common`, then the method's own (common.smk's training_settings)
    blocks.append((OPSAConfig, {**training["common"], **training["opsa"]}, ("training",)))
    blocks.append((SFTConfig, {**training["common"], **training["sft"]}, ("training",)))
    for model, data, path in blocks:
        try:
            model.model_validate(data)
        except ValidationError as e:
            _, msg = first_error(e)
            raise InputError(f"{_key_path((*path, *e.errors()[0]['loc']))}: {msg}") from None


def check_references(config: dict[str, Any]) -> None:
    """Every name a block uses is defined where it should be."""
    models, judges = config["models"], config["judges"]
    for k, policy in enumerate(config["policies"]):
        _defined(policy, models, f"policies[{k}]", "models")
    if "attacker" in config["analysis"]["jailbreak"]:
        _defined(
            config["analysis"]["jailbreak"]["attacker"],
            models,
            "analysis.jailbreak.attacker",
            "models",
        )
    for name, spec in judges.items():
        _judge_model(name, spec, models)
    used = {
        "evaluation.safety_judge": config["evaluation"]["safety_judge"],
        "evaluation.overrefusal_judge": config["evaluation"]["overrefusal_judge"],
        "contexts.judge": config["contexts"]["judge"],
        "training.offpolicy.judge": config["training"]["offpolicy"]["judge"],
    }
    if "judge" in config["analysis"]["jailbreak"]:
        used["analysis.jailbreak.judge"] = config["analysis"]["jailbreak"]["judge"]
    for k, judge in enumerate(config["judge_validation"]["judges"]):
        used[f"judge_validation.judges[{k}]"] = judge
    for where, judge in used.items():
        _defined(judge, judges, where, "judges")
    training = config["training"]
    for role in ("train_harmful", "train_benign"):
        _one_set_with_role(config["datasets"], role, required=bool(training["methods"]))
    for name in ("token_divergence", "jailbreak"):
        chosen = config["analysis"][name].get("dataset")
        if chosen is not None and config["datasets"].get(chosen, {}).get("role") != "eval_harmful":
            raise InputError(
                f"config key 'analysis.{name}.dataset': '{chosen}' is not a set with "
                "role eval_harmful under datasets"
            )
    if config["analysis"]["flip_rate_outcome"]["enabled"] and (
        "opsa" not in training["methods"] or config["contexts"]["selection"].get("pin_harmful")
    ):
        raise InputError(
            "config key 'analysis.flip_rate_outcome.enabled': needs opsa under training.methods "
            "and a context search (contexts.selection.pin_harmful unset)"
        )
    sweep = config["analysis"]["size_sweep"]
    for k, method in enumerate(sweep["methods"] if sweep["enabled"] else []):
        if method not in training["methods"]:
            raise InputError(
                f"config key 'analysis.size_sweep.methods[{k}]': '{method}' is not under "
                "training.methods"
            )
    shares = {round(100 * f) for f in sweep["fractions"]}
    if sweep["enabled"] and (len(shares) < len(sweep["fractions"]) or shares & {0, 100}):
        raise InputError(
            "config key 'analysis.size_sweep.fractions': give distinct shares between 0.01 and "
            "0.99 (each names a variant by its whole percent)"
        )
    if "external_teacher" in training["methods"] and "source" not in training["external"]:
        raise InputError(
            "config key 'training.external.source': method external_teacher needs a source "
            "of (prompt, response) pairs"
        )


def _defined(name: str, block: dict[str, Any], where: str, block_name: str) -> None:
    if name not in block:
        raise InputError(
            f"config key '{where}': '{name}' is not defined under {block_name} "
            f"(defined: {', '.join(map(str, block)) or 'none'})"
        )


def _judge_model(name: str, spec: dict[str, Any], models: dict[str, Any]) -> None:
    where = f"judges.{name}.model"
    model = spec.get("model")
    if spec["kind"] == "refusal_pattern":
        if model is not None:
            raise InputError(f"config key '{where}': kind refusal_pattern takes no model")
        return
    if model is None:
        raise InputError(
            f"config key '{where}': missing; kind {spec['kind']} needs a judge model "
            "(a key of models)"
        )
    _defined(model, models, where, "models")


def _one_set_with_role(datasets: dict[str, Any], role: str, required: bool) -> None:
    """One set of a training role; none is allowed when nothing is trained."""
    names = [name for name, spec in datasets.items() if spec["role"] == role]
    if len(names) > 1 or (required and not names):
        raise InputError(
            f"config key 'datasets': needs exactly one set with role {role} "
            f"(has {len(names)}{': ' + ', '.join(names) if names else ''})"
        )


def check_local_files(config: dict[str, Any]) -> None:
    """The local files the config names for data and contexts exist (relative to the working
    directory), so a typo stops the run before any rule instead of as Snakemake's missing
    input report."""
    named = [
        (f"datasets.{name}.sources[{k}].path", source["path"])
        for name, spec in config["datasets"].items()
        for k, source in enumerate(spec["sources"])
        if source.get("path")
    ]
    candidates = config["contexts"]["candidates"]
    if candidates.get("grid") is not None and candidates["grid"] not in PACKAGE_GRIDS:
        named.append(("contexts.candidates.grid", candidates["grid"]))
    if candidates.get("user_file"):
        named.append(("contexts.candidates.user_file", candidates["user_file"]))
    for key, path in named:
        if not Path(path).exists():
            raise InputError(f"config key '{key}': {path}: file not found")
