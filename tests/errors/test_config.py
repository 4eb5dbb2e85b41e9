"""A bad config stops `snakemake` before any rule runs, with one line naming the file and line
or the key path (dry runs: the check runs while the Snakefile is read)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsa.config import check_config, load_config_files

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config/config.yaml"
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
Config = dict[str, Any]


def _set(path: str, value: Any) -> Callable[[Config], None]:
    def change(config: Config) -> None:
        *parents, last = path.split(".")
        for key in parents:
            config = config.setdefault(key, {})
        config[last] = value

    return change


def _drop_model_of_guard(config: Config) -> None:
    config["judges"]["guard"] = {"kind": "llama_guard"}
    config["evaluation"]["safety_judge"] = "guard"


def _two_harmful_training_sets(config: Config) -> None:
    config["datasets"]["train_benign"]["role"] = "train_harmful"


def _gate_without_borderline_prompts(config: Config) -> None:
    del config["datasets"]["borderline"]


def _tfr_outcome_with_a_pinned_context(config: Config) -> None:
    config["analysis"]["flip_rate_outcome"] = {"enabled": True}
    config["contexts"]["selection"]["pin_harmful"] = "refuse-rule@system"


CASES = {
    "unknown key": (_set("bogus_key", 1), ["config key 'bogus_key'", "unknown key"]),
    "unknown nested key": (
        _set("generation.safety.temprature", 0.5),
        ["generation.safety.temprature", "unknown key"],
    ),
    "wrong type": (_set("seed", "zero"), ["config key 'seed'", "integer"]),
    "bad enum": (_set("datasets.harmbench.role", "eval"), ["datasets.harmbench.role", "'eval'"]),
    "source with two locations": (
        _set("datasets.harmbench.sources", [{"path": "a.txt", "hub": "b/c"}]),
        ["datasets.harmbench.sources[0]", "exactly one of"],
    ),
    "policy not a model": (_set("policies", ["qwen3-8b"]), ["policies[0]", "'qwen3-8b'", "models"]),
    "safety judge not defined": (
        _set("evaluation.safety_judge", "llamaguard"),
        ["evaluation.safety_judge", "'llamaguard'", "judges"],
    ),
    "context-search judge not defined": (
        _set("contexts.judge", "wildguard"),
        ["contexts.judge", "'wildguard'"],
    ),
    "validated judge not defined": (
        _set("judge_validation.judges", ["refusal", "harmbench"]),
        ["judge_validation.judges[1]", "'harmbench'"],
    ),
    "off-policy judge not defined": (
        _set("training.offpolicy.judge", "strongreject"),
        ["training.offpolicy.judge", "'strongreject'"],
    ),
    "guard judge without a model": (_drop_model_of_guard, ["judges.guard.model", "llama_guard"]),
    "guard judge model not defined": (
        _set("judges.guard", {"kind": "wildguard", "model": "wildguard-7b"}),
        ["judges.guard.model", "'wildguard-7b'", "models"],
    ),
    "judge name unfit for paths": (
        _set("judges.my judge;x", {"kind": "refusal_pattern"}),
        ["config key 'judges'", "'my judge;x'"],
    ),
    "two sets for one training role": (
        _two_harmful_training_sets,
        ["datasets", "train_harmful", "train_benign"],
    ),
    "teacher gate without borderline prompts": (
        _gate_without_borderline_prompts,
        ["config key 'datasets'", "role select_borderline", "(has 0)"],
    ),
    "bad gate budget": (
        _set("contexts.selection.gate.max_borderline_increase", 2),
        ["contexts.selection.gate.max_borderline_increase", "greater than the maximum of 1.0"],
    ),
    "external teacher without a source": (
        _set("training.methods", ["external_teacher"]),
        ["training.external.source"],
    ),
    "batch not a multiple of micro-batch": (
        _set("training.common.batch_size", 12),
        ["config key 'training'", "batch_size (12)", "micro_batch_size (8)"],
    ),
    "a classifier judge on a causal model": (
        _set("judges.clf", {"kind": "classifier", "model": "smollm2-135m", "label_map": {}}),
        ["config key 'models.smollm2-135m.task'", "judge 'clf' needs sequence_classification"],
    ),
    "not a finite number": (
        _set("training.common.lr", float("nan")),
        ["config key 'training.common.lr'", "nan is not a finite number"],
    ),
    "an infinite temperature": (
        _set("generation.safety.temperature", float("inf")),
        ["config key 'generation.safety.temperature'", "inf is not a finite number"],
    ),
    "a method's own setting out of range": (
        _set("training.opsa.max_new_tokens", 0),
        ["config key 'training.opsa.max_new_tokens'"],
    ),
    "bad value in a settings model": (
        _set("datasets.arithmetic.sources", [{"builtin": "benign", "size": 10}]),
        ["datasets.arithmetic.sources[0]", "size/seed"],
    ),
    "code execution limit out of range": (
        _set("evaluation.code_execution", {"timeout_s": 0}),
        ["config key 'evaluation.code_execution.timeout_s'"],
    ),
    "jailbreak attacker not a model": (
        _set("analysis.jailbreak.attacker", "gpt-4"),
        ["analysis.jailbreak.attacker", "'gpt-4'", "models"],
    ),
    "jailbreak judge not defined": (
        _set("analysis.jailbreak.judge", "harmbench"),
        ["analysis.jailbreak.judge", "'harmbench'", "judges"],
    ),
    "jailbreak set not harmful": (
        _set("analysis.jailbreak.dataset", "arithmetic"),
        ["analysis.jailbreak.dataset", "'arithmetic'", "eval_harmful"],
    ),
    "unknown jailbreak attack": (
        _set("analysis.jailbreak.attacks", ["gcg"]),
        ["analysis.jailbreak.attacks[0]", "'gcg'"],
    ),
    "jailbreak attempts as samples": (
        _set("analysis.jailbreak.sampling", {"samples": 4}),
        ["analysis.jailbreak.sampling", "attempts"],
    ),
    "size sweep of an untrained method": (
        _set("analysis.size_sweep", {"enabled": True, "methods": ["external_teacher"]}),
        ["analysis.size_sweep.methods[0]", "'external_teacher'", "training.methods"],
    ),
    "size sweep share of the whole set": (
        _set("analysis.size_sweep", {"enabled": True, "fractions": [0.5, 0.999]}),
        ["analysis.size_sweep.fractions", "distinct shares"],
    ),
    "flip rate against outcome with a pinned context": (
        _tfr_outcome_with_a_pinned_context,
        ["analysis.flip_rate_outcome.enabled", "context search"],
    ),
    "bad prompt template": (
        _set("datasets.arithmetic.sources", [{"builtin": "arithmetic", "prompt_template": "{a"}]),
        ["datasets.arithmetic.sources[0]", "prompt_template"],
    ),
}


# one case per kind of check through `snakemake -n` (about 1.5 s each); every case in-process
# through the function the Snakefile calls
THROUGH_SNAKEMAKE = (
    "unknown nested key",
    "wrong type",
    "policy not a model",
    "safety judge not defined",
    "guard judge without a model",
    "batch not a multiple of micro-batch",
)


@pytest.mark.parametrize("case", THROUGH_SNAKEMAKE)
def test_bad_config_is_one_line_before_any_rule(case, embedded_config, snakemake, tmp_path):
    change, named = CASES[case]
    change(embedded_config)
    snakemake(embedded_config).error("opsa config: error:", *named)
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


@pytest.mark.parametrize("case", CASES)
def test_config_check_names_the_key(case):
    config = yaml.safe_load(CONFIG.read_text())
    change, named = CASES[case]
    change(config)
    with pytest.raises(SystemExit) as stop:
        check_config(config, SCHEMA)
    line = str(stop.value.code)
    assert line.startswith("opsa config: error: ") and "\n" not in line
    for name in named:
        assert name in line, line


def test_shipped_configs_pass_the_check():
    """Whole configs alone (the smoke config too); an overlay (no `models:`, e.g.
    config/seeds.yaml) over config/config.yaml, as `--configfile` merges it."""
    for path in [ROOT / ".test/config/config.yaml", *sorted((ROOT / "config").glob("*.yaml"))]:
        whole = "models" in yaml.safe_load(path.read_text())
        check_config(load_config_files([path] if whole else [CONFIG, path]), SCHEMA)


def test_repeated_key_names_file_key_and_line(embedded_config, snakemake, tmp_path):
    text = yaml.safe_dump(embedded_config, sort_keys=False) + "seed: 3\n"
    last = len(text.splitlines())
    snakemake(text).error(f"config.yaml:{last}: key 'seed' repeated")


def test_repeated_nested_key_in_a_configfile(embedded_config, snakemake, tmp_path):
    text = yaml.safe_dump(embedded_config, sort_keys=False)
    text = text.replace("  bootstrap: 1000\n", "  bootstrap: 1000\n  bootstrap: 200\n")
    extra = tmp_path / "mine.yaml"
    extra.write_text(text)
    line = text.splitlines().index("  bootstrap: 200") + 1
    run = snakemake(None, "--configfile", str(extra))
    run.error(f"{extra}:{line}: key 'bootstrap' repeated")


def test_yaml_syntax_error_names_file_and_line(snakemake):
    text = "seed: 0\nmodels:\n  a: {source: x\npolicies: [a]\n"
    snakemake(text).error("config.yaml:4: YAML syntax error")


def test_check_config_names_the_line_of_a_syntax_error_in_a_configfile(opsa, tmp_path):
    # Snakemake reads --configfile files before the Snakefile and names neither file nor line
    extra = tmp_path / "mine.yaml"
    extra.write_text("seed: 1\ngeneration:\n  safety: {temperature: 0.5\n")
    run = opsa("check-config", str(CONFIG), str(extra), "--schema", str(SCHEMA))
    run.error(f"opsa check-config: error: {extra}:4: YAML syntax error")


def test_check_config_checks_the_merged_files(opsa, tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text("evaluation: {safety_judge: guard}\n")
    run = opsa("check-config", str(CONFIG), str(extra))
    run.error("config key 'evaluation.safety_judge': 'guard' is not defined under judges")


def test_the_config_check_imports_no_torch() -> None:
    """The Snakefile runs the check before every plan; torch would add seconds to each."""
    code = (
        "import sys; from opsa.config import load_config_files, validate_config; "
        "validate_config(load_config_files(['config/config.yaml', 'config/paper.yaml'])); "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)[:3]"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def test_an_offpolicy_filter_that_is_the_evaluation_judge_is_a_warning(caplog):
    """The embedded default filters the off-policy pairs with a judge of their own; filtering
    them with the evaluation's safety judge is allowed, never silent."""
    config = yaml.safe_load(CONFIG.read_text())
    with caplog.at_level("WARNING", logger="opsa.config"):
        check_config(config, SCHEMA)
    assert config["training"]["offpolicy"]["judge"] != config["evaluation"]["safety_judge"]
    assert not caplog.records
    config["training"]["offpolicy"]["judge"] = config["evaluation"]["safety_judge"]
    with caplog.at_level("WARNING", logger="opsa.config"):
        check_config(config, SCHEMA)
    assert "trains on what the metric rewards" in caplog.text
    assert "training.offpolicy.judge" in caplog.text
