"""select_context is a checkpoint: once it has run, the plan binds training to the chosen id."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "workflow/Snakefile")]
    command += ["--directory", str(workdir), "--configfile", str(config)]
    command += ["--replace-workflow-config", "--cores", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_training_is_planned_on_the_selected_context(tmp_path: Path, embedded_model_dir: Path):
    config = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    config["models"]["smollm2-135m"]["source"] = str(embedded_model_dir)
    config["contexts"]["selection"]["pin_harmful"] = "refuse-rule@user_prefix"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))

    before = snakemake(tmp_path, path, "-n", "results/models/smollm2-135m/opsa")
    assert before.returncode == 0, before.stderr[-2000:]
    assert "chosen/" not in before.stdout  # unknown until the checkpoint has run

    selected = "results/contexts/smollm2-135m/selected.json"
    ran = snakemake(tmp_path, path, selected)
    assert ran.returncode == 0, ran.stderr[-2000:]

    after = snakemake(tmp_path, path, "-n", "results/models/smollm2-135m/opsa")
    assert after.returncode == 0, after.stderr[-2000:]
    chosen = "results/contexts/smollm2-135m/chosen/refuse-rule@user_prefix--none.json"
    assert chosen in after.stdout
