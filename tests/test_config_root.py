"""The typed config root, opsa.config.PipelineConfig: built from Snakemake's merged config dict,
it writes the schema's defaults into that dict and answers the workflow's questions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opsa.config import PipelineConfig, load_config_files
from opsa.contexts.candidates import grid_candidates, load_grid
from opsa.errors import InputError
from opsa.layout import BASE, Variant
from opsa.training.config import SAFESTEER_PUBLISHED

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config/config.yaml"
PAPER = ROOT / "config/paper.yaml"


def typed(
    *files: Path, change: Callable[[dict[str, Any]], None] | None = None
) -> tuple[PipelineConfig, dict[str, Any]]:
    """The typed root of these config files merged (config/config.yaml when none), and the
    dict it was built from."""
    config = load_config_files(files or [CONFIG])
    if change is not None:
        change(config)
    return PipelineConfig.from_config(config), config


def overlay(name: str) -> tuple[PipelineConfig, dict[str, Any]]:
    return typed(CONFIG, ROOT / "config" / name)


def names(variants: list[Variant]) -> list[str]:
    return [variant.name for variant in variants]


def test_the_schema_fills_the_defaults_the_rules_read_into_the_dict() -> None:
    cfg, config = typed()
    assert config["evaluation"]["code_execution"] == {
        "timeout_s": 10,
        "memory_mb": 1024,
        "file_mb": 16,
    }
    assert type(config["evaluation"]["code_execution"]["timeout_s"]) is int
    assert config["runtime"]["vllm"]["max_num_seqs"] == 64
    assert config["generation"]["code"]["repetition_penalty"] == 1.1
    assert config["models"]["smollm2-135m"]["trust_remote_code"] is False
    assert config["contexts"]["selection"]["pin_harmful"] is None
    # a step's own defaults stay out of the dict: the step applies them
    assert "lr" not in config["training"]["opsa"] and "seed" not in config["training"]["common"]
    assert "prefixes" not in config["analysis"]["jailbreak"]
    assert "revision" not in config["models"]["smollm2-135m"]
    assert cfg.model_spec("smollm2-135m").dtype == "float32"


def test_a_bad_config_is_one_input_error_naming_the_key() -> None:
    with pytest.raises(InputError, match=r"config key 'policies\[0\]': 'nope' is not defined"):
        typed(change=lambda config: config.update(policies=["nope"]))


def test_variants_are_each_method_at_each_seed_in_order() -> None:
    cfg, _ = overlay("seeds.yaml")
    assert cfg.training_seeds() == [0, 1, 2]
    assert names(cfg.variants()) == [
        "base",
        "opsa",
        "opsa-seed1",
        "opsa-seed2",
        "offpolicy_sd",
        "offpolicy_sd-seed1",
        "offpolicy_sd-seed2",
        "safesteer",
        "safesteer-seed1",
        "safesteer-seed2",
    ]
    assert cfg.trained_variants() == cfg.variants()[1:]
    assert cfg.sweep_variants() == cfg.tfr_variants() == []
    assert cfg.evaluated_variants() == cfg.variants()


def test_the_analyses_add_their_own_variants() -> None:
    cfg, _ = overlay("analyses.yaml")
    assert names(cfg.sweep_variants()) == [
        "opsa-frac10",
        "opsa-frac25",
        "opsa-frac50",
        "offpolicy_sd-frac10",
        "offpolicy_sd-frac25",
        "offpolicy_sd-frac50",
    ]
    assert names(cfg.tfr_variants()) == ["opsa-tfrmiddle", "opsa-tfrlast"]
    assert cfg.evaluated_variants() == [
        *cfg.variants(),
        *cfg.sweep_variants(),
        *cfg.tfr_variants(),
    ]


def test_settings_of_a_variant_are_common_then_its_methods_then_its_seed() -> None:
    cfg, config = overlay("seeds.yaml")
    training = config["training"]
    common, sft = training["common"], training["sft"]
    assert cfg.settings_for(Variant("opsa")) == {**common, **training["opsa"], "seed": 0}
    assert cfg.settings_for(Variant("offpolicy_sd", seed=2)) == {**common, **sft, "seed": 2}
    steer = training["safesteer"]
    assert cfg.settings_for(Variant("safesteer", seed=1)) == {
        **common,
        **SAFESTEER_PUBLISHED,  # its published lr, epochs, rollouts over the common ones
        **steer["train"],
        "steering_coefficient": steer["coefficient"],
        "seed": 1,
    }
    with pytest.raises(InputError, match="base"):
        cfg.settings_for(BASE)


def test_settings_of_the_analyses_variants() -> None:
    cfg, config = overlay("analyses.yaml")
    training = config["training"]
    share = cfg.settings_for(Variant.parse("offpolicy_sd-frac25"))
    assert share == {**training["common"], **training["sft"], "seed": 0, "prompt_fraction": 0.25}
    tfr = cfg.settings_for(Variant("opsa", tfr="last"))
    assert tfr == cfg.settings_for(Variant("opsa"))


def test_training_seeds_come_from_one_place() -> None:
    cfg, _ = typed()
    assert cfg.training_seeds() == [0]

    def both(config: dict[str, Any]) -> None:
        config["training"]["seeds"] = [1, 2]
        config["training"]["common"]["seed"] = 3

    with pytest.raises(InputError, match="'training.common.seed': give the seeds in training"):
        typed(change=both)


def test_each_kind_of_set_has_its_judge_and_decoding() -> None:
    cfg, config = typed(PAPER)
    generation = config["generation"]
    assert cfg.sampling_for("humaneval") == generation["code"]
    assert cfg.sampling_for("gsm8k") == generation["reasoning"]
    assert cfg.sampling_for("harmbench") == generation["safety"]
    cfg.sampling_for("harmbench")["seed"] = 99  # a copy
    assert generation["safety"]["seed"] == 0
    assert cfg.judge_for("harmbench") == "llama_guard"
    assert cfg.judge_for("xstest") == "wildguard"
    assert cfg.judge_for("gsm8k") is None
    assert cfg.datasets_with_role("train_harmful", "train_benign") == [
        "train_harmful",
        "train_benign",
    ]
    assert cfg.judges_in_use() == ["llama_guard", "wildguard"]


def test_context_search_and_judges_in_use_follow_the_methods() -> None:
    cfg, _ = typed()
    assert cfg.needs_context_search() and not cfg.context_pinned()
    # the evaluation's judge and the off-policy baseline's own filter
    assert cfg.judges_in_use() == ["prefix", "refusal"]

    def pinned_and_untrained(config: dict[str, Any]) -> None:
        config["training"]["methods"] = ["safesteer"]
        config["contexts"]["selection"]["pin_harmful"] = "refuse-rule@system"

    cfg, _ = typed(change=pinned_and_untrained)
    assert not cfg.needs_context_search() and cfg.context_pinned()


def test_model_scale_sizes_the_jobs() -> None:
    cfg, _ = typed(PAPER)
    assert cfg.billions("qwen3-8b") == 8.0 and cfg.billions("qwen3-0.6b") == 0.6
    assert cfg.train_processes("qwen3-8b") == 4 and cfg.train_processes("qwen3-0.6b") == 1
    assert cfg.model_spec("qwen3-0.6b").dtype == "bfloat16"
    assert typed()[0].billions("smollm2-135m") == pytest.approx(0.135)


def flat(config: Any, prefix: str = "") -> dict[str, Any]:
    """A merged config as dotted key -> leaf value."""
    if not isinstance(config, dict):
        return {prefix: config}
    out: dict[str, Any] = {}
    for key, value in config.items():
        out |= flat(value, f"{prefix}.{key}" if prefix else str(key))
    return out


ABLATIONS = {
    "sd-evaljudge": {"training.offpolicy.judge"},
    "sd-nofilter": {"training.offpolicy.filter"},
    "topk512": {"training.methods", "training.opsa.top_k"},
    "opening10": {"training.methods", "training.opsa.max_new_tokens"},
    "epochs1": {"training.methods", "training.common.epochs"},
    "placement": {"training.methods", "contexts.selection.pin_harmful"},
    "fixed-cb": {
        "training.methods",
        "contexts.selection.pin_harmful",
        "contexts.selection.pin_benign",
    },
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_each_ablation_changes_one_thing_from_the_reference(name: str) -> None:
    """config/ablations/<name>.yaml over config.yaml and seeds.yaml (as scripts/ablation.sh
    merges them) is a valid config that differs from the reference run in its own keys only,
    and trains its methods at the reference's three seeds."""
    seeds = ROOT / "config/seeds.yaml"
    ref_cfg, reference = typed(CONFIG, seeds, ROOT / "config/ablations/reference.yaml")
    cfg, arm = typed(CONFIG, seeds, ROOT / f"config/ablations/{name}.yaml")
    ours, theirs = flat(reference), flat(arm)
    changed = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
    assert changed == ABLATIONS[name]
    assert cfg.training_seeds() == ref_cfg.training_seeds() == [0, 1, 2]
    assert set(names(cfg.trained_variants())) <= set(names(ref_cfg.trained_variants()))
    assert "opsa-seed2" in names(cfg.trained_variants())
    pool = {context.id for context in grid_candidates(load_grid())}
    pins = {k: v for k, v in theirs.items() if ".pin_" in k and v is not None}
    assert set(pins.values()) <= pool, pins  # a pin names a candidate of the default grid
