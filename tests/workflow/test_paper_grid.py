"""The paper's grid plans with the SLURM profile: models × methods × seeds, resources by scale;
the seed dimension keeps the single-seed paths; SafeChain labels count every harmful kind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAPER = yaml.safe_load((ROOT / "config/paper.yaml").read_text())


def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    """The whole plan from this checkout (--forceall: whatever a run left in results/ here)."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def planned_jobs(stdout: str) -> list[dict[str, str]]:
    """Each planned job's rule, wildcards, resources and shell command from a dry run."""
    jobs = []
    for block in re.split(r"\n\[[^\]]+\]\n", stdout)[1:]:
        rule = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        if not rule:
            continue
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, flags=re.M))
        fields["rule"] = rule[1]
        fields["shell"] = block.partition("Shell command: ")[2]
        jobs.append(fields)
    return jobs


def resources(job: dict[str, str]) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=([^,]+)", job.get("resources", "")))


@pytest.fixture(scope="module")
def paper_plan() -> list[dict[str, str]]:
    run = dry_run(
        "--profile", "profiles/slurm",
        "--configfile", "config/paper.yaml", "--replace-workflow-config",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return planned_jobs(run.stdout)


def test_the_grid_trains_every_model_method_and_seed(paper_plan: list[dict]) -> None:
    trained = {
        tuple(re.findall(r"=([^,]+)", j["wildcards"])) for j in paper_plan if j["rule"] == "train"
    }
    methods, seeds = PAPER["training"]["methods"], PAPER["training"]["seeds"]
    assert len(PAPER["policies"]) == 5 and len(methods) == 3 and seeds == [0, 1, 2]
    expected = {
        (model, method if seed == seeds[0] else f"{method}-seed{seed}")
        for model in PAPER["policies"]
        for method in methods
        for seed in seeds
    }
    sweep = PAPER["analysis"]["size_sweep"]
    analyses = {  # the size sweep's and flip rate against outcome's trainings, at the first seed
        *(f"{m}-frac{round(100 * f)}" for m in sweep["methods"] for f in sweep["fractions"]),
        "opsa-tfrmiddle",
        "opsa-tfrlast",
    }
    expected |= {(model, variant) for model in PAPER["policies"] for variant in analyses}
    assert trained == expected
    assert sum(j["rule"] == "grid_report" for j in paper_plan) == 1


def test_each_seed_trains_with_its_own_seed_and_checkpoint_folder(paper_plan: list) -> None:
    job = next(
        j for j in paper_plan
        if j["rule"] == "train" and "model=qwen3-1.7b, variant=opsa-seed2" in j["wildcards"]
    )  # fmt: skip
    assert '"seed": 2' in job["shell"]
    assert "--work-dir results/checkpoints/qwen3-1.7b/opsa-seed2" in job["shell"]
    assert "--out results/models/qwen3-1.7b/opsa-seed2" in job["shell"]


def test_resources_follow_model_scale_and_the_profile(paper_plan: list[dict]) -> None:
    def job_resources(rule: str, model: str) -> dict[str, str]:
        job = next(
            j for j in paper_plan if j["rule"] == rule and f"model={model}," in j["wildcards"]
        )
        return resources(job)

    for model in ("qwen3-8b", "r1-distill-llama-8b"):
        train = job_resources("train", model)
        assert train["gpu"] == "4" and train["tasks_per_gpu"] == "0"
        assert int(train["mem_mb"]) > 64_000 and train["runtime"] == "2880"
    for model in ("qwen3-0.6b", "qwen3-1.7b", "r1-distill-qwen-1.5b"):
        assert job_resources("train", model)["gpu"] == "1"
        assert job_resources("generate", model)["gpu"] == "1"
    small, large = job_resources("generate", "qwen3-0.6b"), job_resources("generate", "qwen3-8b")
    assert int(small["mem_mb"]) < int(large["mem_mb"])
    guard = next(j for j in paper_plan if j["rule"] == "judge")
    assert resources(guard)["gpu"] == "1"  # Llama-Guard / WildGuard
    for rule in ("prepare_data", "evaluate", "report", "grid_report"):
        job = next(j for j in paper_plan if j["rule"] == rule)
        assert "gpu" not in resources(job), rule
        assert resources(job)["slurm_partition"] == "<partition>"


def test_the_embedded_default_keeps_one_seed_and_its_paths() -> None:
    run = dry_run()
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = planned_jobs(run.stdout)
    trained = sorted(j["wildcards"] for j in jobs if j["rule"] == "train")
    assert trained == [
        "model=smollm2-135m, variant=offpolicy_sd",
        "model=smollm2-135m, variant=opsa",
        "model=smollm2-135m, variant=safesteer",
    ]
    assert "results/models/smollm2-135m/opsa" in run.stdout
    assert "results/eval/smollm2-135m/offpolicy_sd/harmbench.json" in run.stdout


def test_adding_seeds_adds_variants_beside_the_first(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    config["training"]["seeds"] = [0, 5]
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump(config))
    run = dry_run("--configfile", str(path), "--replace-workflow-config")
    assert run.returncode == 0, run.stderr[-3000:]
    trained = {j["wildcards"].split("variant=")[1] for j in planned_jobs(run.stdout)
               if j["rule"] == "train"}  # fmt: skip
    assert trained == {"opsa", "opsa-seed5", "offpolicy_sd", "offpolicy_sd-seed5"}


def test_a_seed_given_twice_is_an_error_naming_the_key(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    config["training"]["seeds"] = [0, 1]
    config["training"]["common"]["seed"] = 3
    path = tmp_path / "twice.yaml"
    path.write_text(yaml.safe_dump(config))
    run = dry_run("--configfile", str(path), "--replace-workflow-config")
    assert run.returncode != 0
    assert "training.common.seed" in run.stdout + run.stderr


def test_safechain_rows_are_harmful_iff_their_label_says_harmful() -> None:
    for name in ("train_harmful", "train_benign"):
        (source,) = PAPER["datasets"][name]["sources"]
        assert source["hub"] == "UWNSL/SafeChain"
        label_map = source["label_map"]
        assert {"vanilla_harmful", "adversarial_harmful"} <= set(label_map)
        for label, mapped in label_map.items():
            assert mapped == ("harmful" if "harmful" in label else "benign"), label


def test_published_gains_cover_every_policy() -> None:
    gains = PAPER["grid_report"]["published_gains"]
    assert set(gains) == set(PAPER["policies"])
    assert gains["qwen3-0.6b"] == 5.49 and gains["r1-distill-qwen-1.5b"] == 8.85


def test_the_workstation_profile_caps_gpu_jobs_to_the_gpu_budget() -> None:
    run = dry_run(
        "--profile", "profiles/local", "--resources", "gpu=2",
        "--configfile", "config/paper.yaml", "--replace-workflow-config",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = planned_jobs(run.stdout)
    train_8b = next(j for j in jobs if j["rule"] == "train" and "model=qwen3-8b," in j["wildcards"])
    assert resources(train_8b)["gpu"] == "2"  # asks for 4, the machine has 2
    assert "slurm_partition" not in resources(train_8b)


def test_code_sets_decode_greedy_with_repetition_penalty_and_gpqa_samples_eight(
    paper_plan: list[dict],
) -> None:
    def sampling(dataset: str) -> dict:
        (job,) = [
            j
            for j in paper_plan
            if j["rule"] == "generate"
            and "model=qwen3-0.6b, variant=base" in j["wildcards"]
            and j["wildcards"].endswith(f"dataset={dataset}")
        ]
        return yaml.safe_load(re.search(r"--sampling '([^']+)'", job["shell"])[1])

    for code_set in ("humaneval", "mbpp"):
        assert sampling(code_set) | {"max_new_tokens": 0, "batch_size": 0} == {
            "temperature": 0.0, "repetition_penalty": 1.1, "samples": 1, "top_k": 0,
            "top_p": 1.0, "seed": 0, "max_new_tokens": 0, "batch_size": 0,
        }  # fmt: skip
    gpqa = sampling("gpqa_diamond")
    paper = {"samples": 8, "temperature": 0.6, "top_p": 0.95, "top_k": 20}
    assert {key: gpqa[key] for key in paper} == paper
    evaluate = [j for j in paper_plan if j["rule"] == "evaluate" and "humaneval" in j["wildcards"]]
    assert evaluate and all("--answer-type humaneval" in j["shell"] for j in evaluate)
    assert all("--code-limits" in j["shell"] for j in evaluate)
