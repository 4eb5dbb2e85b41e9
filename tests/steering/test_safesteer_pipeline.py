"""The SafeSteer branch of the pipeline on the smoke config, with `safesteer` as the one
training method: direction -> steered teacher and its gate -> safety tokens -> train_safesteer,
real model, real steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[2]
MODEL = "results/models/smollm2-135m/safesteer"


@pytest.mark.slow
def test_safesteer_branch_runs_from_the_rules(tmp_path: Path, embedded_model_dir: Path) -> None:
    config = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    # the tests' prepared copy of the embedded model (the smoke run converts the GGUF itself)
    config["models"]["smollm2-135m"]["source"] = str(embedded_model_dir)
    config["training"]["methods"] = ["safesteer"]
    config["training"]["common"]["max_steps"] = 1
    config["training"]["safesteer"] = {
        "coefficient": 3.0,
        "direction": {
            "layer": 15,
            "max_prompts": 4,
            # a small scan; no candidate induces refusal on the 135M model, so layer 15 steers
            "search": {
                "validation": 2,
                "positions": 1,
                "max_layer_fraction": 0.2,
                "override": True,
            },
        },
        "tokens": {"count": 10, "positions": 3, "samples": 2, "inner_top_k": 20, "max_prompts": 2},
        # the steered teacher cannot beat the base on 4 prompts a set: trained anyway
        "teacher": {"coefficients": [3.0], "gate": {"override": True}},
        "train": {"rollouts_per_prompt": 2},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    run = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "--cores", "2", MODEL,
            "--snakefile", str(ROOT / "workflow/Snakefile"), "--directory", str(tmp_path),
            "--configfile", str(tmp_path / "config.yaml"), "--replace-workflow-config",
        ],
        capture_output=True, text=True, env=env, timeout=1800,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    steering = tmp_path / "results/steering/smollm2-135m"
    with safe_open(str(steering / "direction.safetensors"), "pt") as f:
        assert f.metadata()["layer"] == "15" and f.metadata()["prompts_harmful"] == "4"
    scan = json.loads((steering / "direction_scan.json").read_text())
    assert scan["gate"]["overridden"] and scan["chosen"]["layer"] == 15
    teacher = json.loads((steering / "steered_teacher.json").read_text())
    assert [p["coefficient"] for p in teacher["coefficients"]] == [3.0]
    assert teacher["gate"]["overridden"] and teacher["direction"]["layer"] == 15
    assert teacher["base"]["n_harmful"] == config["contexts"]["n_harmful"]
    tokens = json.loads((steering / "safety_tokens.json").read_text())
    assert len(tokens["tokens"]) == 10 and tokens["coefficient"] == 3.0
    table = (steering / "safety_tokens.md").read_text()
    assert all(f"| {t['id']} |" in table for t in tokens["tokens"])
    log = [json.loads(x) for x in (tmp_path / MODEL / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["tokens"] > 0
