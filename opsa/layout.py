"""Where every output of the pipeline lives, and how a trained variant is named.

This module is the one owner of both. The Snakemake rules, the generated `dvc.yaml`, the
report and the tests read the templates below; nothing else spells a `results/...` path or
parses a variant name.

A template holds Snakemake wildcards (`{model}`, `{variant}`, `{dataset}`, ...); `fill`
formats one. A variant is the base model or one trained model of a policy:

    base                    the prepared checkpoint of the policy
    opsa                    a method at the first configured training seed
    opsa-seed1              the same method at a further seed
    opsa-frac25             the training-set-size sweep: 25% of the training items
    opsa-tfrmiddle          flip rate against outcome: the middle-ranked context

The first seed keeps the method's bare name, so adding seeds later retrains nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opsa.errors import InputError

RESULTS = "results"
TFR_POSITIONS = ("middle", "last")


class Paths:
    """Output templates, by stage (Snakemake wildcard syntax)."""

    # data and models
    data = "results/data/{dataset}.jsonl"
    provenance = "results/data/provenance/{dataset}.json"
    model = "results/models/{model}/{variant}"
    checkpoints = "results/checkpoints/{model}/{variant}"
    # context search
    candidates = "results/contexts/{model}/candidates.jsonl"
    flip_baseline = "results/contexts/{model}/baseline.jsonl"
    flip_baseline_judged = "results/contexts/{model}/baseline.judged.jsonl"
    flip_shard = "results/contexts/{model}/scores/shard{shard}.csv"
    flip_shard_responses = "results/contexts/{model}/scores/shard{shard}.responses.jsonl"
    flip_rates = "results/contexts/{model}/flip_rates.csv"
    searched_candidates = "results/contexts/{model}/search/candidates.jsonl"
    searched_flip_rates = "results/contexts/{model}/search/flip_rates.csv"
    selected = "results/contexts/{model}/selected.json"
    ranking = "results/contexts/{model}/ranking.csv"
    teachers = "results/contexts/{model}/teachers.json"
    chosen = "results/contexts/{model}/chosen/{harmful}--{benign}.json"
    ranked_context = "results/contexts/{model}/tfr/{position}.json"
    # training data of the baselines, SafeSteer's steering files
    offpolicy_pairs = "results/training_data/{model}/offpolicy.jsonl"
    external_pairs = "results/training_data/external.jsonl"
    direction = "results/steering/{model}/direction.safetensors"
    direction_scan = "results/steering/{model}/direction_scan.json"
    steered_teacher = "results/steering/{model}/steered_teacher.json"
    safety_tokens = "results/steering/{model}/safety_tokens.json"
    safety_token_table = "results/steering/{model}/safety_tokens.md"
    # generation, judges, evaluation
    generations = "results/generations/{model}/{variant}/{dataset}.jsonl"
    judgments = "results/judgments/{model}/{variant}/{dataset}.{judge}.jsonl"
    evaluation = "results/eval/{model}/{variant}/{dataset}.json"
    evaluation_items = "results/eval/{model}/{variant}/{dataset}.items.jsonl"
    judge_validation = "results/judge_validation/{judge}.json"
    # analyses
    attacks = "results/jailbreak/attacks/{attack}.jsonl"
    jailbreak_responses = "results/jailbreak/{model}/{variant}/{attack}.jsonl"
    jailbreak_judgments = "results/jailbreak/{model}/{variant}/{attack}.{judge}.jsonl"
    token_divergence = "results/analysis/{model}/token_divergence.json"
    jailbreak = "results/analysis/{model}/jailbreak.json"
    size_sweep = "results/analysis/{model}/size_sweep.json"
    flip_rate_outcome = "results/analysis/{model}/flip_rate_outcome.json"
    # report
    summary_csv = "results/report/summary.csv"
    summary_json = "results/report/summary.json"
    summary_md = "results/report/summary.md"
    paired_csv = "results/report/paired.csv"
    safety_vs_reasoning = "results/report/safety_vs_reasoning.png"
    grid_csv = "results/report/grid.csv"
    grid_md = "results/report/grid.md"
    flip_rate_plot = "results/report/flip_rates/{model}.png"
    teacher_plot = "results/report/teachers/{model}.png"
    token_divergence_plot = "results/report/token_divergence/{model}.png"
    jailbreak_plot = "results/report/jailbreak/{model}.png"
    training_curves_plot = "results/report/training/{model}.png"
    size_sweep_plot = "results/report/size_sweep/{model}.png"
    flip_rate_outcome_plot = "results/report/flip_rate_outcome/{model}.png"


def fill(template: str, **wildcards: object) -> str:
    """One path of a template: `fill(Paths.model, model="m", variant="base")`."""
    return template.format(**{k: str(v) for k, v in wildcards.items()})


def folder(template: str) -> str:
    """The fixed folder a template's files live under: `results/contexts` for
    `results/contexts/{model}/selected.json`, `results/report` for `results/report/grid.md`."""
    return template.split("{", 1)[0].rsplit("/", 1)[0]


_NAME = re.compile(
    r"(?P<method>[A-Za-z0-9_]+)(?:-seed(?P<seed>\d+))?(?:-frac(?P<frac>\d+))?"
    r"(?:-tfr(?P<tfr>[a-z]+))?"
)


@dataclass(frozen=True)
class Variant:
    """A policy's base model or one of its trained models.

    `seed` None is the first configured training seed (the name leaves it out); `fraction`
    is the share of the training items (the size sweep); `tfr` is the rank position of the
    context OPSA trained with (flip rate against outcome)."""

    method: str
    seed: int | None = None
    fraction: float | None = None
    tfr: str | None = None

    @property
    def name(self) -> str:
        name = self.method
        if self.seed is not None:
            name += f"-seed{self.seed}"
        if self.fraction is not None:
            name += f"-frac{round(100 * self.fraction)}"
        if self.tfr is not None:
            name += f"-tfr{self.tfr}"
        return name

    @property
    def is_base(self) -> bool:
        return self.method == "base"

    @classmethod
    def parse(cls, name: str) -> Variant:
        """The variant a name stands for; a name the workflow cannot have made is an error."""
        found = _NAME.fullmatch(name)
        if found is None or (found["tfr"] and found["tfr"] not in TFR_POSITIONS):
            raise InputError(f"variant '{name}': not a name like opsa, opsa-seed1, opsa-frac25")
        return cls(
            method=found["method"],
            seed=int(found["seed"]) if found["seed"] else None,
            fraction=int(found["frac"]) / 100 if found["frac"] else None,
            tfr=found["tfr"],
        )

    def seed_or(self, first_seed: int) -> int:
        """The training seed: its own, else the first configured one."""
        return first_seed if self.seed is None else self.seed

    def __str__(self) -> str:
        return self.name


BASE = Variant("base")


def variant_pattern(method: str) -> str:
    """The pattern a trained variant of `method` matches (a rule's wildcard_constraints)."""
    return rf"{method}(-seed\d+)?(-frac\d+)?(-tfr({'|'.join(TFR_POSITIONS)}))?"
