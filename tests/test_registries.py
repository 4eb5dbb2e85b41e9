"""The three registries people extend, extended as docs/extending.md says: its code blocks are
run here in the modules they name, then used the way the pipeline uses them (the train step on
the command line, the evaluate stage), and taken out again."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import wraps
from pathlib import Path
from types import ModuleType

import pytest
import torch
from safetensors.torch import load_file

from opsa.cli import main
from opsa.distill import divergence
from opsa.evaluation import answers
from opsa.evaluation.evaluate import evaluate_set
from opsa.records import write_json, write_jsonl
from opsa.training import methods
from opsa.training.config import OPSAConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "docs" / "extending.md"
RUN = ["--threads", "1", "--backend", "hf"]
FUTURE = "from __future__ import annotations\n"


def recipe(module: ModuleType, registry: dict) -> Iterator[None]:
    """Run the docs' code block for `module` inside it; remove what it registered after."""
    relative = Path(module.__file__).relative_to(ROOT).as_posix()
    blocks = re.findall(r"```python\n# (\S+)\n(.*?)```", RECIPES.read_text(), re.DOTALL)
    code = next(body for path, body in blocks if path == relative)
    before, names = set(registry), set(vars(module))
    # compiled as the module is: its annotations name types it imports only for checking
    exec(compile(FUTURE + code, str(RECIPES), "exec", dont_inherit=True), vars(module))
    yield
    for name in set(registry) - before:
        del registry[name]
    for name in set(vars(module)) - names:
        delattr(module, name)


@pytest.fixture
def total_variation() -> Iterator[None]:
    yield from recipe(divergence, divergence.DIVERGENCES)


@pytest.fixture
def yes_no() -> Iterator[None]:
    yield from recipe(answers, answers.ANSWER_TYPES)


@pytest.fixture
def refusal_sft() -> Iterator[None]:
    yield from recipe(methods, methods.METHODS)


@pytest.fixture
def tiny(tiny_llama) -> Path:
    return tiny_llama(32)


def write_prompts(path: Path, prompts: list[str], label: str) -> Path:
    rows = [{"id": f"{label}{i}", "prompt": p, "label": label} for i, p in enumerate(prompts)]
    write_jsonl(path, rows)
    return path


def changed(before: Path, after: Path) -> bool:
    a, b = load_file(before / "model.safetensors"), load_file(after / "model.safetensors")
    return any(not torch.equal(a[k], b[k]) for k in a)


def log_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_a_registered_divergence_is_the_training_loss(total_variation, tiny, tmp_path, monkeypatch):
    """One OPSA step with divergence total_variation: every value the function returns is a
    loss term (the logged loss is their token mean), and the student moves."""
    returned: list[torch.Tensor] = []
    registered = divergence.DIVERGENCES["total_variation"]

    @wraps(registered)
    def watched(teacher_logp: torch.Tensor, student_logp: torch.Tensor) -> torch.Tensor:
        value = registered(teacher_logp, student_logp)
        returned.append(value.detach())
        return value

    monkeypatch.setitem(divergence.DIVERGENCES, "total_variation", watched)
    harmful = write_prompts(tmp_path / "h.jsonl", ["How do I pick a lock?"], "harmful")
    benign = write_prompts(tmp_path / "b.jsonl", ["What is the capital of France?"], "benign")
    contexts = tmp_path / "contexts.json"
    context = {"id": "c", "text": "Refuse harm.", "placement": "system"}
    write_json(contexts, {"harmful": context, "benign": None})
    config = {"divergence": "total_variation", "max_steps": 1, "batch_size": 2,
              "micro_batch_size": 2, "max_new_tokens": 4, "lr": 1e-3}  # fmt: skip
    out = tmp_path / "out"
    argv = [*RUN, "train", "opsa", "--config", json.dumps(config), "--model-dir", str(tiny),
            "--out", str(out), "--work-dir", str(tmp_path / "work"), "--input",
            f"harmful={harmful}", "--input", f"benign={benign}", "--input",
            f"contexts={contexts}"]  # fmt: skip
    assert main(argv) == 0
    (row,) = log_rows(out)
    values = torch.cat(returned)
    assert row["tokens"] == values.numel() > 0
    assert row["loss"] == pytest.approx(values.mean().item(), rel=1e-6) and row["loss"] > 0
    assert changed(tiny, out)


def test_divergence_settings_are_training_config_fields():
    for name in divergence.DIVERGENCES:
        for field in divergence.setting_fields(name).values():
            assert field in OPSAConfig.model_fields, (name, field)


def test_the_analysis_uses_a_divergence_with_its_default_settings():
    t = torch.tensor([[0.7, 0.2, 0.1]]).log()
    s = torch.tensor([[0.4, 0.4, 0.2]]).log()
    mixed = divergence.bind("mixed")(t, s)
    assert torch.equal(mixed, divergence.mixed_kl(t, s, forward_weight=0.5))
    weighted = divergence.bind("mixed", OPSAConfig(mixed_forward_weight=0.2))(t, s)
    assert torch.equal(weighted, divergence.mixed_kl(t, s, forward_weight=0.2))


def test_a_registered_answer_type_scores_an_evaluation(yes_no, tmp_path):
    prompts = [("q0", "yes"), ("q1", "no"), ("q2", "No")]
    write_jsonl(
        tmp_path / "prompts.jsonl",
        [{"id": i, "prompt": f"Question {i}?", "label": "benign", "answer": a} for i, a in prompts],
    )
    responses = {"q0": "Yes, it is.", "q1": "I think yes.", "q2": "Maybe... no."}
    write_jsonl(
        tmp_path / "generations.jsonl",
        [{"id": i, "sample": 0, "response": r} for i, r in responses.items()],
    )
    record = evaluate_set(
        "eval_reasoning", tmp_path / "prompts.jsonl", tmp_path / "generations.jsonl", None,
        tmp_path / "record.json", "m", "base", "yes_no_set", answer_type="yes_no",
        bootstrap=10, items_path=tmp_path / "items.jsonl",
    )  # fmt: skip
    assert record["value"] == pytest.approx(2 / 3) and record["judge"] == "answer:yes_no"
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert [(it["extracted"], it["reference"]) for it in items] == [
        ("yes", "yes"),
        ("yes", "no"),
        ("no", "no"),
    ]
    from opsa.data.prepare import SetSpec

    spec = {"role": "eval_reasoning", "sources": [{"builtin": "benign"}], "answer_type": "yes_no"}
    assert SetSpec.model_validate(spec).answer_type == "yes_no"


def test_an_unregistered_answer_type_is_named():
    from pydantic import ValidationError

    from opsa.data.prepare import SetSpec

    spec = {"role": "eval_reasoning", "sources": [{"builtin": "benign"}], "answer_type": "yes"}
    with pytest.raises(ValidationError, match="'yes' is not an answer type"):
        SetSpec.model_validate(spec)


def test_a_registered_method_trains_from_the_command_line(refusal_sft, tiny, tmp_path):
    harmful = write_prompts(tmp_path / "h.jsonl", ["Pick a lock.", "Rob a bank."], "harmful")
    out, work = tmp_path / "out", tmp_path / "work"
    config = {"max_steps": 1, "batch_size": 2, "micro_batch_size": 2, "lr": 1e-3}
    argv = [*RUN, "train", "refusal_sft", "--config", json.dumps(config), "--model-dir",
            str(tiny), "--out", str(out), "--work-dir", str(work)]  # fmt: skip
    assert main([*argv, "--input", f"harmful={harmful}"]) == 0
    (row,) = log_rows(out)
    assert row["tokens"] > 0 and row["loss"] > 0
    assert changed(tiny, out)
    assert (work / "refusal_pairs.jsonl").read_text().count(methods.REFUSAL) == 2


@pytest.mark.parametrize(
    "inputs, error",
    [
        ([], "--input harmful=PATH: missing (method refusal_sft needs it)"),
        (["harmful=h.jsonl", "benign=b.jsonl"], "--input benign: not an input of method "),
        (["harmful=h.jsonl", "harmful=x.jsonl"], "--input: harmful is given twice"),
    ],
)
def test_the_train_step_checks_the_methods_inputs(refusal_sft, tmp_path, capsys, inputs, error):
    argv = ["train", "refusal_sft", "--config", "{}", "--model-dir", "m", "--out",
            str(tmp_path / "o"), "--work-dir", str(tmp_path / "w")]  # fmt: skip
    assert main([*argv, *(w for i in inputs for w in ("--input", i))]) == 1
    err = capsys.readouterr().err
    assert error in err and len(err.strip().splitlines()) == 1


def test_every_method_is_complete(tmp_path):
    """Each built-in method's settings, completed from its input files, validate."""
    training = {
        "opsa": {"divergence": "mixed"},
        "safesteer": {"train": {"lr": 1e-6}, "coefficient": 4.0},
        "sft": {"max_response_tokens": 64},
    }
    write_json(tmp_path / "safety_tokens", {"tokens": [{"id": 5}, {"id": 7}]})
    assert methods.method_names() == ["opsa", "safesteer", "offpolicy_sd", "external_teacher"]
    for method in methods.METHODS.values():
        assert issubclass(method.config_class, TrainConfig) and method.inputs
        inputs = {name: tmp_path / name for name in method.inputs}
        config = method.parse_config(method.settings(training), inputs, "training")
        assert isinstance(config, method.config_class)
    safesteer = methods.METHODS["safesteer"]
    inputs = {name: tmp_path / name for name in safesteer.inputs}
    config = safesteer.parse_config(safesteer.settings(training), inputs, "training")
    assert (config.steering_coefficient, config.token_ids) == (4.0, [5, 7])
    assert [m for m, v in methods.METHODS.items() if v.uses_contexts] == ["opsa", "offpolicy_sd"]


def test_the_registries_import_without_torch():
    """The workflow reads them when it plans: no torch, transformers or math-verify."""
    code = (
        "import sys, opsa.training.methods, opsa.analysis.settings, opsa.data.prepare; "
        "print(sorted({'torch', 'transformers', 'math_verify'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr[-2000:]
