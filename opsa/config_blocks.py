"""The blocks of the pipeline's config (`opsa.config.PipelineConfig` composes them) and what the
generated JSON schema says about the settings models the blocks hold.

A block the pipeline owns is a `Block`: unknown keys are errors; a key whose default is None is
optional (left out, never null) and every other default is written into Snakemake's config
dict by the schema, since the rules read the blocks raw. A settings model a step validates
(SamplingParams, TrainConfig, ...) keeps its own defaults; `Settings` on the field that holds
it says which of them the schema writes into the config dict, and the step applies the rest
when it validates.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from opsa.analysis.settings import TokenAnalysisSettings
from opsa.data.prepare import SetSpec
from opsa.data.sources import ChoiceSpec, SourceSpec
from opsa.errors import first_error
from opsa.evaluation.code_exec import ExecLimits
from opsa.generation.engine import SamplingParams
from opsa.jailbreak.settings import JailbreakSettings
from opsa.judges.spec import KINDS, JudgeSpec
from opsa.models.reference import ModelSpec
from opsa.training.config import OPSAConfig, SFTConfig, TrainConfig
from opsa.training.methods import METHODS


@dataclass(frozen=True)
class Settings:
    """How one place of the config shows a settings model (an `Annotated` marker).

    On a field typed with the model, `fill` says which of its defaults the schema writes into
    the config dict: True all, a tuple those named, False none. On a raw `dict` field, `model`
    is the settings model whose keys the block takes, less those of `minus` and `skip`, as
    "module:Class" where the model's module imports torch (which the check must not wait for):
    the block stays a dict, checked by the schema and validated by its step. `define` names the
    schema definition the place refers to (places with one name show the model alike).
    """

    model: type[BaseModel] | str | None = None
    minus: type[BaseModel] | None = None
    skip: tuple[str, ...] = ()
    fill: bool | tuple[str, ...] = False
    define: str | None = None

    def resolve(self) -> type[BaseModel] | None:
        """The settings model, imported where given by name."""
        if not isinstance(self.model, str):
            return self.model
        module, _, name = self.model.partition(":")
        return getattr(importlib.import_module(module), name)

    def keys(self) -> list[str]:
        """The keys of a raw block: the model's fields less `minus`'s and `skip`."""
        model = self.resolve()
        assert model is not None, "Settings on a dict names a model"
        dropped = {*(self.minus.model_fields if self.minus else ()), *self.skip}
        return [name for name in model.model_fields if name not in dropped]

    def fills(self, name: str) -> bool:
        return self.fill is True or (isinstance(self.fill, tuple) and name in self.fill)


FILLED = Settings(fill=True)
SAMPLING = Settings(fill=True, define="sampling")

# Settings models whose entries name things (a model, a set, a source, a judge): an optional
# key is left out, never null. In every other settings model null means the field's default.
ENTRY_MODELS: tuple[type[BaseModel], ...] = (ModelSpec, SetSpec, SourceSpec, ChoiceSpec, JudgeSpec)

NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
MODEL_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
SIZE_PATTERN = r"([0-9]+(?:[.][0-9]+)?)([MB])"  # a parameter count: 135M, 0.6B
LOCATIONS = ("path", "hub", "package", "builtin")

# What the schema adds to a settings model's field ("Model.field"), as Annotated metadata: a
# constraint the model leaves to a validator, a description it lacks, the keys of a raw dict.
FIELD_NOTES: dict[str, tuple[Any, ...]] = {
    "ModelSpec.size": (
        {
            "pattern": f"^{SIZE_PATTERN}$",
            "description": "parameter count, e.g. 135M or 0.6B; sizes the jobs' memory and run "
            "time",
        },
    ),
    "ModelSpec.train_processes": (
        {"description": "training processes (one per GPU); default training.num_processes"},
    ),
    "ModelSpec.family": ({"description": "descriptive, for grouping in reports"},),
    "SourceSpec.package": ({"description": "a file inside an installed Python package"},),
    "SourceSpec.size": ({"minimum": 1},),
    "SourceSpec.prompt_template": (
        {
            "description": "the prompt as text with {column} fields filled from the source's "
            "columns (lists one item a line; {choices} is the lettered options of a choices "
            "source); replaces columns.prompt"
        },
    ),
    "SourceSpec.choices": (
        {
            "description": "multiple choice: the option columns; each row's options are shuffled "
            "with the seed of `seed` and the row's id column, and its answer is the correct "
            "option's letter"
        },
    ),
    "SetSpec.answer_type": (
        {
            "description": "how a reasoning set is scored: gsm8k, math, number, choice (a final "
            "answer against the reference), or humaneval, mbpp (the response's program run "
            "against the tests in the rows' meta columns: humaneval prompt, test, entry_point; "
            "mbpp test_list and optionally test_imports, test_setup_code)"
        },
    ),
    "JudgeSpec.kind": ({"enum": list(KINDS)},),
    "JudgeSpec.template": ({"description": "a prompt template file (default: the kind's own)"},),
    "JudgeSpec.label_map": (
        {
            "description": "classifier: each of the model's labels (config.id2label) -> refusal, "
            "compliance, unsafe or safe"
        },
    ),
    "JudgeSpec.input": (
        {"description": "classifier: what it reads, the response or the (prompt, response) pair"},
    ),
    "JudgeSpec.max_length": ({"description": "classifier: tokens read (longer inputs are cut)"},),
    "ModelSpec.task": (
        {
            "description": "sequence_classification for a classifier judge's model (a "
            "classification head); causal_lm for every policy and guard model"
        },
    ),
    "TrainConfig.report_to": ({"uniqueItems": True},),
    # written as the integer the config has always held, so the rules' params stay the same
    "ExecLimits.timeout_s": ({"default": 10},),
    "CandidatesConfig.grid": (
        {"description": "a package grid ('default', 'paper') or a YAML file"},
    ),
    "CandidatesConfig.generated": (
        {"description": "candidates written by a model (opsa.contexts.candidates)"},
    ),
    "JailbreakSettings.attacks": ({"uniqueItems": True},),
    "JailbreakSettings.prefixes": (
        {"description": "affirmative openings for behaviours without a target of their own"},
    ),
    "JailbreakSettings.sampling": (
        Settings(SamplingParams),
        {"description": "decoding of the attacked models (keys of generation.safety)"},
    ),
    "JailbreakSettings.attacker_sampling": (Settings(SamplingParams),),
}
# What the schema adds to a settings model wherever it appears.
MODEL_NOTES: dict[str, dict[str, Any]] = {
    "SourceSpec": {
        "description": "one source of prompts (opsa.data.sources.SourceSpec checks the details)",
        "oneOf": [{"required": [location]} for location in LOCATIONS],
    },
}

Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description="letters, digits, '_' and '-' (a name becomes part of file paths)",
    ),
]
ModelName = Annotated[
    str,
    Field(
        pattern=MODEL_NAME_PATTERN,
        description="letters, digits, '_', '.' and '-' (a name becomes part of file paths)",
    ),
]


def _registered_method(name: str) -> str:
    if name not in METHODS:
        raise ValueError(f"'{name}' is not a training method (one of {', '.join(METHODS)})")
    return name


def _method_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = list(METHODS)


# a name in opsa.training.methods.METHODS
MethodName = Annotated[
    str, AfterValidator(_registered_method), Field(json_schema_extra=_method_enum)
]
# the methods the training-set-size sweep trains again on shares of the items
SweepMethod = Literal["opsa", "offpolicy_sd", "external_teacher"]
UNIQUE = {"uniqueItems": True}


class Block(BaseModel):
    """A block of the config the pipeline owns (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid")


class Generation(Block):
    """Decoding of the evaluated models, by kind of set."""

    backend: Literal["auto", "hf", "vllm"] = Field(
        "auto",
        description="hf, vllm, or auto (vllm on a GPU; on a CPU the faster here, measured: see "
        "docs/benchmarks.md)",
    )
    safety: Annotated[SamplingParams, SAMPLING] = Field(
        default_factory=SamplingParams, description="decoding for the safety sets"
    )
    reasoning: Annotated[SamplingParams, SAMPLING] = Field(
        default_factory=SamplingParams,
        description="decoding for the reasoning sets other than code",
    )
    code: Annotated[SamplingParams, SAMPLING] = Field(
        default_factory=lambda: SamplingParams(
            temperature=0.0, repetition_penalty=1.1, max_new_tokens=512
        ),
        description="decoding for code sets (paper; greedy with repetition penalty 1.1)",
    )


class Evaluation(Block):
    """The judges of the safety sets and the scoring of every set."""

    safety_judge: str = Field(description="the judge (under judges) of the eval_harmful sets")
    overrefusal_judge: str = Field(
        description="the judge (under judges) of the eval_overrefusal sets"
    )
    bootstrap: int = Field(1000, ge=100, description="bootstrap resamples of each interval")
    code_execution: Annotated[ExecLimits, FILLED] = Field(
        default_factory=ExecLimits,
        description="limits of each program a code set runs (opsa.evaluation.code_exec)",
    )


class JudgeValidation(Block):
    """Each listed judge scored against human-labelled files."""

    judges: list[str] = Field([], description="judges (under judges) to validate")
    files: list[str] = Field([], description="labelled files; none: no validation runs")
    reference_prefixes: str | None = Field(
        None,
        description="a prefix list reported beside each judge (a phrase file or FILE.json:KEY)",
    )


class Contexts(Block):
    """Privileged-context search (candidate pool, teacher flip rate, selection)."""

    candidates: Annotated[
        dict[str, Any], Settings("opsa.contexts.candidates:CandidatesConfig", fill=True)
    ] = Field({}, description="where the candidate pool comes from")
    n_harmful: int = Field(32, ge=1, description="harmful prompts each candidate is scored on")
    n_benign: int = Field(32, ge=1, description="benign prompts each candidate is scored on")
    n_borderline: int = Field(
        32,
        ge=1,
        description="borderline benign prompts (the set of role select_borderline) each "
        "candidate's teacher is measured on",
    )
    shards: int = Field(1, ge=1, description="parallel scoring jobs")
    judge: str = Field("refusal", description="the judge (under judges) of the flip rates")
    sampling: Annotated[SamplingParams, SAMPLING] = Field(
        default_factory=SamplingParams, description="decoding while scoring the candidates"
    )
    selection: Annotated[
        dict[str, Any], Settings("opsa.contexts.select:SelectionConfig", fill=True)
    ] = Field({}, description="how the contexts are chosen from the scored pool")
    search: Annotated[
        dict[str, Any], Settings("opsa.contexts.search:SearchConfig", fill=("rounds", "top_k"))
    ] = Field({}, description="rounds that grow the pool from its best candidates (0: none)")


class SafeSteer(Block):
    """SafeSteer: the teacher is the frozen model steered along a refusal direction (no
    context); the loss is reverse KL restricted to the voted safety tokens, not renormalised;
    trained on the harmful prompts only."""

    coefficient: float = Field(
        1.0, description="c in h + c * direction, for token selection and the teacher"
    )
    direction: Annotated[
        dict[str, Any],
        Settings("opsa.steering.direction:DirectionSettings", define="steering_direction"),
    ] = Field({}, description="where the refusal direction is read and added")
    teacher: Annotated[
        dict[str, Any],
        Settings("opsa.steering.teacher:SteeredTeacherCheck", define="steered_teacher"),
    ] = Field({}, description="the steered teacher's point at each coefficient, and its gate")
    tokens: Annotated[
        dict[str, Any], Settings("opsa.steering.tokens:TokenSelection", define="safety_tokens")
    ] = Field({}, description="the safety-token vote")
    train: Annotated[
        dict[str, Any], Settings(OPSAConfig, minus=TrainConfig, define="train_opsa")
    ] = Field(
        {},
        description="the method's own settings over training.common (keys of training.opsa; "
        "defaults: SafeSteer's published lr 1e-5, epochs 1, rollouts_per_prompt 8 at "
        "temperature 1.0, over training.common; divergence reverse_kl, estimator restricted; "
        "token_ids come from the vote)",
    )


class OffPolicy(Block):
    """The off-policy baseline's training pairs: the base model's responses with the selected
    contexts, kept where the judge finds them safe."""

    judge: str = Field(
        "refusal",
        description="the judge (under judges) of the responses; a warning when it is the "
        "evaluation's safety judge",
    )
    filter: bool = Field(
        True,
        description="drop the harmful-prompt responses the judge calls unsafe (false: keep "
        "every non-empty response, to measure what the filter does)",
    )
    sampling: Annotated[SamplingParams, SAMPLING] = Field(
        default_factory=lambda: SamplingParams(temperature=0.6),
        description="decoding of the responses",
    )


class External(Block):
    """The external-teacher baseline's (prompt, response) pairs."""

    source: SourceSpec | None = Field(None, description="where the pairs come from")
    n: int | None = Field(None, ge=1, description="pairs used (default: all)")


class Training(Block):
    """Full-parameter training; `common` holds the settings every method shares
    (opsa.training.config.TrainConfig), `opsa` and `sft` each method's own."""

    methods: list[MethodName] = Field([], json_schema_extra=UNIQUE)
    seeds: list[Annotated[int, Field(ge=0)]] | None = Field(
        None,
        min_length=1,
        json_schema_extra=UNIQUE,
        description="training seeds, one trained variant per method and seed: the first seed's "
        'variant is named by its method ("opsa"), every further seed s "<method>-seed<s>" '
        "(default: the one seed training.common.seed, else 0)",
    )
    num_processes: int = Field(
        1,
        ge=1,
        description="data-parallel training processes (one per GPU); over 1 the train rules run "
        "`accelerate launch` (DeepSpeed from envs/deepspeed/ on GPUs, gloo on CPUs); "
        "models.<name>.train_processes overrides it per model",
    )
    common: Annotated[dict[str, Any], Settings(TrainConfig, define="train_common")] = Field(
        {}, description="the settings every method shares"
    )
    opsa: Annotated[
        dict[str, Any], Settings(OPSAConfig, minus=TrainConfig, define="train_opsa")
    ] = Field({}, description="OPSA's own settings over training.common")
    sft: Annotated[dict[str, Any], Settings(SFTConfig, minus=TrainConfig, define="train_sft")] = (
        Field({}, description="the SFT baselines' own settings over training.common")
    )
    safesteer: SafeSteer = Field(default_factory=SafeSteer)
    offpolicy: OffPolicy = Field(default_factory=OffPolicy)
    external: External = Field(default_factory=External)

    @model_validator(mode="after")
    def _method_settings(self) -> Training:
        """`common` with each method's own block, as the train step validates it."""
        for name, model, own in (("opsa", OPSAConfig, self.opsa), ("sft", SFTConfig, self.sft)):
            try:
                model.model_validate({**self.common, **own})
            except ValidationError as e:
                key, message = first_error(e)
                if key == "(config)":
                    raise ValueError(message) from None
                block = name if key.split(".")[0] in own else "common"  # where the value is
                raise ValueError(f"{block}.{key}: {message}") from None
        return self


class GridReport(Block):
    """The aggregate over the grid (results/report/grid.*): composite safety gain of `method`
    over `baseline` per model, mean and interval across training seeds, beside published
    gains."""

    method: str = Field("opsa", description="the method compared")
    baseline: str = Field("offpolicy_sd", description="the method it is compared to")
    published_gains: dict[str, float] = Field(
        {}, description="a published gain in points of S per model name, e.g. {qwen3-0.6b: 5.49}"
    )
    published_source: str | None = Field(None, description="where the published gains come from")


class TokenDivergence(Block, TokenAnalysisSettings):
    """Per-position divergence of every model variant from the teacher (the base model with the
    selected harmful context) on the base model's responses to a harmful set; runs when a
    method trains with selected contexts."""

    enabled: bool = Field(True, description="run the analysis")
    dataset: str | None = Field(None, description="an eval_harmful set (default: the first)")


class FlipRateOutcome(Block):
    """OPSA trained again with the middle and the last eligible harmful context of the ranking;
    harmful compliance after training against each context's TFR, with Spearman's rank
    correlation."""

    enabled: bool = Field(False, description="run the analysis")


class SizeSweep(Block):
    """The training-set-size sweep: each listed method trained again on seeded shares of the
    training items (first seed), evaluated on every set, plotted against the share."""

    enabled: bool = Field(False, description="run the sweep")
    fractions: list[Annotated[float, Field(gt=0, lt=1)]] = Field(
        [0.1, 0.25, 0.5],
        min_length=1,
        json_schema_extra=UNIQUE,
        description="shares below 1 (the full-size variant is the method's own)",
    )
    methods: list[SweepMethod] = Field(
        ["opsa", "offpolicy_sd"],
        min_length=1,
        json_schema_extra=UNIQUE,
        description="methods trained again (each under training.methods)",
    )


class Jailbreak(Block, JailbreakSettings):
    """Adaptive jailbreaks against every model variant: attack success rate and pass@N per
    attack, judged by the configured judge (docs/results.md, "Analyses")."""

    enabled: bool = Field(True, description="run the analysis")
    dataset: str | None = Field(None, description="an eval_harmful set (default: the first)")
    judge: str | None = Field(
        None, description="a judge under judges (default: evaluation.safety_judge)"
    )
    attacker: str | None = Field(
        None,
        description="a model under models that writes the PAP paraphrases (default: the first "
        "policy)",
    )


class Analysis(Block):
    """The paper's analyses beside the evaluation (docs/results.md, "Analyses")."""

    token_divergence: Annotated[TokenDivergence, FILLED] = Field(default_factory=TokenDivergence)
    flip_rate_outcome: FlipRateOutcome = Field(default_factory=FlipRateOutcome)
    size_sweep: SizeSweep = Field(default_factory=SizeSweep)
    jailbreak: Annotated[
        Jailbreak, Settings(fill=("attacks", "attempts", "rounds", "templates", "marker"))
    ] = Field(default_factory=Jailbreak)
