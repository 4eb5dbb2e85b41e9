"""The pipeline's config as one typed root, `PipelineConfig`, checked as a whole before any rule
runs, and the questions the workflow asks of it.

The Snakefile reads every config file strictly (`check_config_files`) before Snakemake merges
them, and `PipelineConfig.from_config` checks the merged dict: every problem is one line naming
the file and line or the key path. In order: a YAML syntax error or a key given twice; the JSON
schema generated from PipelineConfig (`python -m opsa.config_docs`), which also writes its
defaults into the dict the rules read; the typed root itself, whose blocks hold the settings
models the steps validate with; every name one block uses that another defines; the local files
the config names. The blocks are in `opsa.config_blocks`.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, NoReturn

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from opsa.config_blocks import (
    SIZE_PATTERN,
    Analysis,
    Block,
    Contexts,
    Evaluation,
    Generation,
    GridReport,
    JudgeValidation,
    ModelName,
    Name,
    Settings,
    Training,
)
from opsa.contexts import PACKAGE_GRIDS
from opsa.data.prepare import TEST_COLUMNS, SetSpec
from opsa.errors import InputError, first_error
from opsa.judges.spec import MODEL_FREE, JudgeSpec
from opsa.layout import BASE, TFR_POSITIONS, Variant
from opsa.models.reference import ModelSpec
from opsa.records import check_writable, not_a_file, read_yaml
from opsa.training.methods import METHODS

log = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml"


class PipelineConfig(Block):
    """The opsa pipeline's configuration: config/config.yaml and the overlays merged over it."""

    seed: int = Field(0, description="the seed of every seeded step")
    models: dict[ModelName, Annotated[ModelSpec, Settings(fill=("dtype", "trust_remote_code"))]] = (
        Field(min_length=1, description="every model the pipeline prepares, by name")
    )
    policies: list[str] = Field(
        min_length=1, description="models (keys of `models`) that are evaluated and trained"
    )
    datasets: dict[Name, Annotated[SetSpec, Settings(define="dataset")]] = Field(
        min_length=1, description="every prompt set, by name"
    )
    runtime: Annotated[dict[str, Any], Settings("opsa.models.runtime:RuntimeConfig", fill=True)] = (
        Field(
            {},
            description="how every model of every step runs (opsa.models.runtime.RuntimeConfig); "
            "auto = cuda, bfloat16 and flash-attention/sdpa where a GPU is, cpu and float32 "
            "where none is",
        )
    )
    generation: Generation = Field(default_factory=Generation)
    judges: dict[Name, Annotated[JudgeSpec, Settings(define="judge")]] = Field(
        min_length=1, description="every judge, by name"
    )
    evaluation: Evaluation
    judge_validation: JudgeValidation = Field(default_factory=JudgeValidation)
    contexts: Contexts = Field(default_factory=Contexts)
    training: Training = Field(default_factory=Training)
    grid_report: GridReport = Field(default_factory=GridReport)
    analysis: Analysis = Field(default_factory=Analysis)

    _config: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_config(cls, data: Any, handler: Any) -> PipelineConfig:
        """Keep the dict it was read from: blocks handed to a step as they are come from it."""
        root = handler(data)
        root._config = data
        return root

    @classmethod
    def from_config(
        cls, config: dict[str, Any], schema: str | Path | None = None
    ) -> PipelineConfig:
        """Check Snakemake's merged `config` (writing the schema's defaults into it) and return
        the typed root; the first problem is one InputError line. `schema`: the workflow's
        schema file unless given."""
        check_finite(config)
        check_schema(config, schema or SCHEMA_FILE)
        try:
            root = cls.model_validate(config)
        except ValidationError as e:
            _, message = first_error(e)
            path = list(e.errors()[0]["loc"])
            inner = re.match(r"([A-Za-z_][\w.]*): (.*)", message)  # a block's check: "key: ..."
            if inner:
                path, message = [*path, *inner[1].split(".")], inner[2]
            raise InputError(f"{_key_path(path)}: {message}") from None
        check_references(root)
        check_local_files(root)
        return root

    # -- the questions the workflow asks ---------------------------------------------------

    def datasets_with_role(self, *roles: str) -> list[str]:
        """The sets of any of these roles, in config order."""
        return [name for name, spec in self.datasets.items() if spec.role in roles]

    def judge_for(self, dataset: str) -> str | None:
        """The judge that labels a safety set; None for a reasoning set."""
        role = self.datasets[dataset].role
        if role == "eval_harmful":
            return self.evaluation.safety_judge
        if role == "eval_overrefusal":
            return self.evaluation.overrefusal_judge
        return None

    def sampling_for(self, dataset: str) -> dict[str, Any]:
        """A set's decoding as the config gives it: `generation.code` for code sets (answer
        types humaneval, mbpp), `generation.reasoning` for the other reasoning sets,
        `generation.safety` otherwise."""
        spec = self.datasets[dataset]
        if spec.answer_type in TEST_COLUMNS:
            key = "code"
        else:
            key = "reasoning" if spec.role == "eval_reasoning" else "safety"
        return dict(self._config["generation"][key])

    def needs_context_search(self) -> bool:
        """Whether a configured method trains with the selected contexts."""
        return any(METHODS[method].uses_contexts for method in self.training.methods)

    def context_pinned(self) -> bool:
        """Whether the contexts are pinned by id (no flip rates are scored)."""
        return self.contexts.selection.get("pin_harmful") is not None

    def judges_in_use(self) -> list[str]:
        """The judges some step runs: the evaluation's, the context search's, the off-policy
        baseline's and, when there are labelled files, the validated ones."""
        judges = {self.evaluation.safety_judge, self.evaluation.overrefusal_judge}
        if self.needs_context_search():
            judges.add(self.contexts.judge)
        if any("offpolicy_pairs" in METHODS[m].inputs for m in self.training.methods):
            judges.add(self.training.offpolicy.judge)
        if self.judge_validation.files:
            judges |= set(self.judge_validation.judges)
        return sorted(judges)

    def model_spec(self, name: str) -> ModelSpec:
        """The `models:` entry of a model (its source, dtype, trust_remote_code, size)."""
        return self.models[name]

    def billions(self, model: str) -> float:
        """A model's parameter count in billions (0 when its `size` is not given)."""
        size = self.models[model].size
        if size is None:
            return 0.0
        match = re.fullmatch(SIZE_PATTERN, size)
        if not match:
            raise InputError(f"config key 'models.{model}.size': '{size}' is not like 135M or 0.6B")
        return float(match[1]) / (1000.0 if match[2] == "M" else 1.0)

    def train_processes(self, model: str) -> int:
        """Training processes (one per GPU): models.<name>.train_processes, else
        training.num_processes."""
        return self.models[model].train_processes or self.training.num_processes

    def training_seeds(self) -> list[int]:
        """The training seeds: `training.seeds`, else the one seed of `training.common`."""
        if self.training.seeds is None:
            return [self.training.common.get("seed", 0)]
        if "seed" in self.training.common:
            raise InputError(
                "config key 'training.common.seed': give the seeds in training.seeds only"
            )
        return list(self.training.seeds)

    def variants(self) -> list[Variant]:
        """The base model, then each configured method at each training seed (the first seed's
        variant is named by its method alone)."""
        first, *_ = seeds = self.training_seeds()
        trained = [
            Variant(method, seed=None if seed == first else seed)
            for method in self.training.methods
            for seed in seeds
        ]
        return [BASE, *trained]

    def trained_variants(self) -> list[Variant]:
        return [variant for variant in self.variants() if not variant.is_base]

    def sweep_variants(self) -> list[Variant]:
        """The training-set-size sweep's variants: each method on each share, first seed."""
        sweep = self.analysis.size_sweep
        if not sweep.enabled:
            return []
        return [Variant(m, fraction=f) for m in sweep.methods for f in sweep.fractions]

    def tfr_variants(self) -> list[Variant]:
        """Flip rate against outcome: OPSA trained with the middle and the last context."""
        if not self.analysis.flip_rate_outcome.enabled:
            return []
        return [Variant("opsa", tfr=position) for position in TFR_POSITIONS]

    def evaluated_variants(self) -> list[Variant]:
        """Every variant evaluated: the base model, each method and seed, the analyses' own."""
        return [*self.variants(), *self.sweep_variants(), *self.tfr_variants()]

    def settings_for(self, variant: Variant) -> dict[str, Any]:
        """The training settings of one trained variant, as the config gives them: the shared
        `training.common`, the method's own block (opsa.training.methods), the variant's seed
        and, for a size-sweep variant, its share of the items."""
        if variant.method not in METHODS:
            raise InputError(f"variant '{variant.name}': not a trained variant")
        own = METHODS[variant.method].settings(self._config["training"])
        seed = variant.seed_or(self.training_seeds()[0])
        settings = {**self.training.common, **own, "seed": seed}
        if variant.fraction is not None:
            settings["prompt_fraction"] = round(100 * variant.fraction) / 100
        return settings


# -- reading and checking -----------------------------------------------------------------


def exit_with_one_line(e: InputError, where: str = "config") -> NoReturn:
    """End the Snakemake run with the one line (Snakemake would add its own traceback):
    `where` is the config, or the workflow reading an intermediate file."""
    sys.exit(f"opsa {where}: error: {e}")


def check_config_files(paths: Iterable[str | Path]) -> None:
    """Read every existing config file strictly: a syntax error or a repeated key ends the run
    with one line naming the file and the line."""
    try:
        for path in paths:
            if Path(path).is_file():
                read_yaml(path)
    except InputError as e:
        exit_with_one_line(e)


def check_output_folders(folders: Iterable[str] = ("results", "logs")) -> None:
    """`check_writable` on the workflow's output folders, ending the run with one line."""
    try:
        check_writable(folders)
    except InputError as e:
        exit_with_one_line(e, "workflow")


def check_config(config: dict[str, Any], schema: str | Path | None = None) -> PipelineConfig:
    """`validate_config`, ending the run with one line at the first problem."""
    try:
        return validate_config(config, schema)
    except InputError as e:
        exit_with_one_line(e)


def validate_config(config: dict[str, Any], schema: str | Path | None = None) -> PipelineConfig:
    """The schema (filling in its defaults), the typed root, the cross-references and the
    local files; the first problem is one InputError line."""
    return PipelineConfig.from_config(config, schema)


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


def check_finite(config: Any, path: tuple[str | int, ...] = ()) -> None:
    """Every number in the config is finite: YAML's `.nan` and `.inf` would pass the range
    checks below with a misleading message, or none."""
    if isinstance(config, dict):
        for key, value in config.items():
            check_finite(value, (*path, key))
    elif isinstance(config, list):
        for k, value in enumerate(config):
            check_finite(value, (*path, k))
    elif isinstance(config, float) and not math.isfinite(config):
        raise InputError(f"{_key_path(path)}: {config} is not a finite number")


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


def check_references(cfg: PipelineConfig) -> None:
    """Every name a block uses is defined where it should be."""
    for k, policy in enumerate(cfg.policies):
        _defined(policy, cfg.models, f"policies[{k}]", "models")
        if cfg.models[policy].task != "causal_lm":
            raise InputError(
                f"config key 'policies[{k}]': '{policy}' is a classifier, not a policy"
            )
    attacker = cfg.analysis.jailbreak.attacker
    if attacker is not None:
        _defined(attacker, cfg.models, "analysis.jailbreak.attacker", "models")
    for name, spec in cfg.judges.items():
        _judge_model(name, spec, cfg.models)
    for where, judge in _judges_named(cfg).items():
        _defined(judge, cfg.judges, where, "judges")
    for role in ("train_harmful", "train_benign"):
        _one_set_with_role(cfg, role, required=bool(cfg.training.methods))
    gated = cfg.contexts.selection.get("gate", {}).get("enabled", True)
    scored = cfg.needs_context_search() and not cfg.context_pinned()
    _one_set_with_role(cfg, "select_borderline", required=scored and gated)
    _check_analyses(cfg)
    _filter_is_not_the_metric(cfg)
    if "external_teacher" in cfg.training.methods and cfg.training.external.source is None:
        raise InputError(
            "config key 'training.external.source': method external_teacher needs a source "
            "of (prompt, response) pairs"
        )
    cfg.training_seeds()


def _judges_named(cfg: PipelineConfig) -> dict[str, str]:
    """key path -> the judge it names."""
    named = {
        "evaluation.safety_judge": cfg.evaluation.safety_judge,
        "evaluation.overrefusal_judge": cfg.evaluation.overrefusal_judge,
        "contexts.judge": cfg.contexts.judge,
        "training.offpolicy.judge": cfg.training.offpolicy.judge,
    }
    if cfg.analysis.jailbreak.judge is not None:
        named["analysis.jailbreak.judge"] = cfg.analysis.jailbreak.judge
    for k, judge in enumerate(cfg.judge_validation.judges):
        named[f"judge_validation.judges[{k}]"] = judge
    return named


def _check_analyses(cfg: PipelineConfig) -> None:
    """The analyses' sets, and the trainings they add."""
    for name in ("token_divergence", "jailbreak"):
        chosen = getattr(cfg.analysis, name).dataset
        if chosen is not None and chosen not in cfg.datasets_with_role("eval_harmful"):
            raise InputError(
                f"config key 'analysis.{name}.dataset': '{chosen}' is not a set with "
                "role eval_harmful under datasets"
            )
    if cfg.analysis.flip_rate_outcome.enabled and (
        "opsa" not in cfg.training.methods or cfg.contexts.selection.get("pin_harmful")
    ):
        raise InputError(
            "config key 'analysis.flip_rate_outcome.enabled': needs opsa under training.methods "
            "and a context search (contexts.selection.pin_harmful unset)"
        )
    sweep = cfg.analysis.size_sweep
    for k, method in enumerate(sweep.methods if sweep.enabled else []):
        if method not in cfg.training.methods:
            raise InputError(
                f"config key 'analysis.size_sweep.methods[{k}]': '{method}' is not under "
                "training.methods"
            )
    shares = {round(100 * f) for f in sweep.fractions}
    if sweep.enabled and (len(shares) < len(sweep.fractions) or shares & {0, 100}):
        raise InputError(
            "config key 'analysis.size_sweep.fractions': give distinct shares between 0.01 and "
            "0.99 (each names a variant by its whole percent)"
        )


def _defined(name: str, block: dict[str, Any], where: str, block_name: str) -> None:
    if name not in block:
        raise InputError(
            f"config key '{where}': '{name}' is not defined under {block_name} "
            f"(defined: {', '.join(map(str, block)) or 'none'})"
        )


def _judge_model(name: str, spec: JudgeSpec, models: dict[str, ModelSpec]) -> None:
    where = f"judges.{name}.model"
    if spec.kind in MODEL_FREE:
        if spec.model is not None:
            raise InputError(f"config key '{where}': kind {spec.kind} takes no model")
        return
    if spec.model is None:
        raise InputError(
            f"config key '{where}': missing; kind {spec.kind} needs a judge model (a key of models)"
        )
    _defined(spec.model, models, where, "models")
    classifier = spec.kind == "classifier"
    if classifier != (models[spec.model].task == "sequence_classification"):
        task = "sequence_classification" if classifier else "causal_lm"
        raise InputError(f"config key 'models.{spec.model}.task': judge '{name}' needs {task}")
    if classifier and not spec.label_map:
        raise InputError(
            f"config key 'judges.{name}.label_map': missing; a classifier judge maps each of its "
            "model's labels to refusal, compliance, unsafe or safe"
        )


def _filter_is_not_the_metric(cfg: PipelineConfig) -> None:
    """A warning when the off-policy baseline keeps only the responses the evaluation's own
    safety judge calls safe: it is then trained on exactly what the metric rewards."""
    if "offpolicy_sd" in cfg.training.methods and (
        cfg.training.offpolicy.judge == cfg.evaluation.safety_judge
    ):
        log.warning(
            "config key 'training.offpolicy.judge': the off-policy baseline is filtered by the "
            "evaluation's safety judge '%s', so it trains on what the metric rewards",
            cfg.evaluation.safety_judge,
        )


def _one_set_with_role(cfg: PipelineConfig, role: str, required: bool) -> None:
    """One set of a role; none is allowed where nothing needs it."""
    names = cfg.datasets_with_role(role)
    if len(names) > 1 or (required and not names):
        raise InputError(
            f"config key 'datasets': needs exactly one set with role {role} "
            f"(has {len(names)}{': ' + ', '.join(names) if names else ''})"
        )


def check_local_files(cfg: PipelineConfig) -> None:
    """The local files the config names for data and contexts exist (relative to the working
    directory), so a typo stops the run before any rule instead of as Snakemake's missing
    input report."""
    named = [
        (f"datasets.{name}.sources[{k}].path", source.path)
        for name, spec in cfg.datasets.items()
        for k, source in enumerate(spec.sources)
        if source.path
    ]
    candidates = cfg.contexts.candidates
    if candidates.get("grid") is not None and candidates["grid"] not in PACKAGE_GRIDS:
        named.append(("contexts.candidates.grid", candidates["grid"]))
    if candidates.get("user_file"):
        named.append(("contexts.candidates.user_file", candidates["user_file"]))
    for key, path in named:
        if not Path(path).is_file():
            raise InputError(f"config key '{key}': {path}: {not_a_file(path)}")
