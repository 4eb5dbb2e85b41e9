"""A change reruns exactly what depends on it: the jobs Snakemake plans after one finished
smoke run, for each kind of change (config values, local files, package data and code)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

CONTEXT_RULES = {
    "context_candidates",
    "flip_rate_baseline",
    "score_flip_rate",
    "merge_flip_rates",
    "select_context",
    "plot_flip_rates",
    "plot_teachers",
}
TRAIN_RULES = {"offpolicy_pairs", "train"}


@pytest.fixture
def planned(tool: Callable) -> Callable[..., dict[str, int]]:
    return lambda workdir, config, *args: plan(tool, workdir, config, *args)


# the summary and the grid report read every evaluation
REPORTS = {"report": 1, "grid_report": 1}
JAILBREAK = {
    "jailbreak_attacks",
    "jailbreak_generate",
    "jailbreak_judge",
    "jailbreak",
}  # prefilling


def plan(tool: Callable, workdir: Path, config: dict, *args: str) -> dict[str, int]:
    """Jobs per rule that `snakemake -n` plans in `workdir` with `config` (`all` left out)."""
    path = workdir / ".planned-config.yaml"
    path.write_text(yaml.safe_dump(config))
    own = workdir / "workflow/Snakefile"  # a clone plans with its own workflow and package
    snakefile = own if own.is_file() else ROOT / "workflow/Snakefile"
    run = tool(
        ["snakemake", "-n", "--snakefile", str(snakefile), "--directory", str(workdir),
         "--configfile", str(path), "--replace-workflow-config", *args],
        cwd=workdir,
    )  # fmt: skip
    path.unlink()
    return job_counts(run.stdout)


def job_counts(stdout: str) -> dict[str, int]:
    """Jobs per rule in the job stats a Snakemake (dry) run printed (`all` left out)."""
    table = re.search(r"Job stats:\njob +count\n[- ]+\n(.*?)\ntotal", stdout, re.S)
    if table is None:
        assert "Nothing to be done" in stdout, stdout[-2000:]
        return {}
    jobs = dict(line.split() for line in table.group(1).splitlines())
    return {rule: int(n) for rule, n in jobs.items() if rule != "all"}


def smoke() -> dict:
    return yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())


def evaluation_only(config: dict) -> dict:
    """No training methods and no training sets: the base model is only evaluated."""
    config = copy.deepcopy(config)
    config["training"]["methods"] = []
    config["datasets"] = {
        name: spec for name, spec in config["datasets"].items() if spec["role"].startswith("eval")
    }
    return config


# Planning from nothing: no run needed.


def test_each_prompt_set_is_prepared_by_its_own_job(tmp_path: Path, planned: Callable) -> None:
    jobs = planned(tmp_path, smoke())
    assert jobs["prepare_data"] == len(smoke()["datasets"])


def test_an_evaluation_only_config_plans_no_context_search(
    tmp_path: Path, planned: Callable
) -> None:
    jobs = planned(tmp_path, evaluation_only(smoke()))
    evaluation = {"prepare_model", "prepare_data", "generate", "judge", "evaluate", "report"}
    assert set(jobs) == evaluation | JAILBREAK
    assert jobs["prepare_data"] == 3 and jobs["generate"] == 3  # base model only
    assert jobs["jailbreak_generate"] == 1  # the base model


@pytest.mark.slow
def test_an_evaluation_only_config_runs(
    tmp_path: Path, embedded_model_dir: Path, tool: Callable
) -> None:
    config = evaluation_only(smoke())
    config["models"]["smollm2-135m"]["source"] = str(embedded_model_dir)
    for spec in config["datasets"].values():
        spec["n"] = 4
    for sampling in config["generation"].values():
        sampling["max_new_tokens"] = 8
    path = tmp_path / "evaluation-only.yaml"
    path.write_text(yaml.safe_dump(config))
    tool(
        ["snakemake", "--cores", "2", "--snakefile", str(ROOT / "workflow/Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(path), "--replace-workflow-config"],
        cwd=ROOT,
    )  # fmt: skip
    assert (tmp_path / "results/report/summary.md").is_file()
    assert not (tmp_path / "results/contexts").exists()
    assert sorted(p.name for p in (tmp_path / "results/eval/smollm2-135m").iterdir()) == ["base"]


# Planning after one real smoke run (the shared `smoke_clone`, see conftest.py).


@pytest.fixture
def current(smoke_clone: Path) -> dict:
    """The config the shared run was last brought up to date with."""
    return yaml.safe_load((smoke_clone / "config/config.yaml").read_text())


@pytest.mark.slow
def test_an_unchanged_config_plans_nothing(
    smoke_clone: Path, current: dict, planned: Callable
) -> None:
    assert planned(smoke_clone, current) == {}


@pytest.mark.slow
def test_adding_an_evaluation_set_retrains_nothing(
    smoke_clone: Path, current: dict, planned: Callable
) -> None:
    current["datasets"]["harmbench_again"] = {**current["datasets"]["harmbench"], "n": 4}
    jobs = planned(smoke_clone, current)
    assert jobs == {"prepare_data": 1, "generate": 3, "judge": 3, "evaluate": 3} | REPORTS


@pytest.mark.slow
def test_changing_one_sets_n_reevaluates_that_set_only(
    smoke_clone: Path, current: dict, planned: Callable
) -> None:
    current["datasets"]["arithmetic"]["n"] = 6
    jobs = planned(smoke_clone, current)
    assert jobs == {"prepare_data": 1, "generate": 3, "evaluate": 3} | REPORTS


@pytest.mark.slow
def test_an_evaluation_parameter_reruns_evaluation_and_report_only(
    smoke_clone: Path, current: dict, planned: Callable
) -> None:
    current["evaluation"]["bootstrap"] += 100
    assert planned(smoke_clone, current) == {"evaluate": 9, "jailbreak": 1} | REPORTS


@pytest.mark.slow
@pytest.mark.parametrize(
    ("block", "key", "value", "trained"),
    [
        ("opsa", "top_k", 32, {"train": 1}),
        ("sft", "max_response_tokens", 24, {"train": 1}),
        ("offpolicy", "sampling", {"temperature": 0.7, "max_new_tokens": 24, "batch_size": 16},
         {"offpolicy_pairs": 1, "train": 1}),
    ],
)  # fmt: skip
def test_one_methods_training_parameter_retrains_that_method_only(
    smoke_clone: Path,
    current: dict,
    planned: Callable,
    block: str,
    key: str,
    value: object,
    trained: dict,
) -> None:
    current["training"][block][key] = value
    jobs = planned(smoke_clone, current)
    downstream = {"generate": 3, "judge": 2, "evaluate": 3, "token_divergence": 1} | REPORTS
    downstream |= {"jailbreak_generate": 1, "jailbreak_judge": 1, "jailbreak": 1}
    downstream |= {"training_curves": 1}
    assert jobs == trained | downstream


@pytest.fixture
def edited(smoke_clone: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A file of the clone with one more line, restored afterwards."""
    path = smoke_clone / request.param
    original = path.read_bytes()
    path.write_bytes(original + b"\n")
    yield path
    path.write_bytes(original)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("edited", "expected"),
    [
        ("inputs/overrefusal.jsonl",  # a local data file of one set
         {"prepare_data": 1, "generate": 3, "judge": 3, "evaluate": 3} | REPORTS),
        ("opsa/evaluation/metrics.py", {"evaluate": 9} | REPORTS),  # the code of one step
    ],
    indirect=["edited"],
)  # fmt: skip
def test_editing_a_file_reruns_exactly_its_readers(
    smoke_clone: Path, current: dict, planned: Callable, edited: Path, expected: dict
) -> None:
    assert planned(smoke_clone, current) == expected


@pytest.mark.slow
@pytest.mark.parametrize(
    ("edited", "first"),
    [
        ("inputs/grid.yaml", {"context_candidates"}),  # the user's context grid
        ("opsa/judges/resources/refusal_phrases.txt", {"judge", "score_flip_rate"}),
    ],
    indirect=["edited"],
)
def test_editing_a_context_or_judge_file_reruns_its_readers(
    smoke_clone: Path, current: dict, planned: Callable, edited: Path, first: set
) -> None:
    jobs = planned(smoke_clone, current)
    assert first <= set(jobs) and "select_context" in jobs
    assert not {"prepare_data", "prepare_model", "flip_rate_baseline"} & set(jobs)
    if "judge" in first:
        assert jobs["judge"] == 6 and "context_candidates" not in jobs
