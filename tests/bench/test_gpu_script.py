"""scripts/gpu_check.sh --small end to end on this CPU, as on a GPU image without vLLM: the
check falls back to HF generation and writes MFU, rollout tokens/s, the phase split and peak
memory (timings are never asserted, only that they were measured)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.step_mfu import PHASES

ROOT = Path(__file__).resolve().parents[2]
# Imported by every interpreter started with this folder on PYTHONPATH (the script's and the
# benchmark sides' alike): a None entry makes both `import vllm` and
# importlib.util.find_spec("vllm") fail, as where vLLM is not installed.
NO_VLLM = 'import sys\nsys.modules["vllm"] = None\n'


@pytest.mark.slow
def test_gpu_check_small_without_vllm_falls_back_to_hf(tmp_path):
    blocker = tmp_path / "no_vllm"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(NO_VLLM)
    env = os.environ | {"PYTHONPATH": str(blocker), "PYTHON": sys.executable,
                        "OUT": str(tmp_path / "out")}  # fmt: skip
    probe = subprocess.run([sys.executable, "-c", "import vllm"], env=env, capture_output=True)
    assert probe.returncode != 0 and b"ModuleNotFoundError" in probe.stderr

    run = subprocess.run(
        ["bash", "scripts/gpu_check.sh", "--small"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert "rollouts: hf" in lines[0] and any(x.startswith("| 7 | GPU: HF rollout") for x in lines)

    result = json.loads((tmp_path / "out" / "small" / "row7_gpu.json").read_text())
    assert result["backend"] == "hf"  # the row's own check found no vLLM
    assert result["generation"] == {"cache_implementation": "static", "compile": False}
    assert list(result["models"]) == ["qwen3-0.6b"]  # the script's default architecture
    model = result["models"]["qwen3-0.6b"]
    training, rollout = model["training"], model["rollout"]
    # both sides generated with HF (each side records the backend it opened)
    assert model["backend"] == rollout["backend"] == training["backend"] == "hf"
    assert model["rollout_tokens_per_s"] > 0
    assert rollout["by_batch"]["2"]["tokens"] == 2 * 4  # random weights never stop early
    assert isinstance(training["mfu"], float) and training["mfu"] > 0
    assert training["peak_flops"] > 0 and training["step_s"] > 0
    split = training["split_median_s"]
    assert set(split) == set(PHASES) and all(v >= 0 for v in split.values())
    assert split["rollout"] > 0 and sum(split.values()) <= training["step_s"] * 1.01
    assert all(s["rollout_tokens"] > 0 and s["teacher_tokens"] > 0 for s in training["steps"])
    for side in (training, rollout):  # on a CPU no GPU memory; the process's peak RSS
        assert side["peak_gpu_allocated_mb"] is None and side["peak_gpu_reserved_mb"] is None
        assert side["peak_rss_mb"] > 0
