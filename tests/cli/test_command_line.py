"""The command line every rule calls: one clear line per bad input, nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsa.cli import all_steps, main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err.strip()


def test_every_rule_step_is_a_command() -> None:
    rules = "".join(p.read_text() for p in Path("workflow/rules").glob("*.smk"))
    called = {next(w for w in line.split("python -m opsa --threads {threads} ")[1].split()
                   if not w.startswith("{params."))  # global options: {params.run_on}
              for line in rules.splitlines() if "python -m opsa --threads" in line}  # fmt: skip
    assert called, "no rule calls the command line"
    assert called <= set(all_steps())


def test_unknown_config_key_is_one_line(capsys, tmp_path: Path) -> None:
    spec = json.dumps({"source": "x", "famly": "qwen"})
    code, err = run(capsys, "prepare-model", "--spec", spec, "--out", str(tmp_path / "m"))
    assert code == 1
    assert (
        err
        == "opsa prepare-model: error: models entry: key 'famly': Extra inputs are not permitted"
    )
    assert not (tmp_path / "m").exists()


def test_missing_prompt_file_names_it(capsys, tmp_path: Path, embedded_model_dir: Path) -> None:
    out = tmp_path / "gen.jsonl"
    missing = tmp_path / "nowhere.jsonl"
    code, err = run(
        capsys, "generate", "--model", str(embedded_model_dir), "--prompts", str(missing),
        "--out", str(out),
    )  # fmt: skip
    assert code == 1 and len(err.splitlines()) == 1
    assert str(missing) in err and "file not found" in err
    assert not out.exists()


def test_empty_prompt_set_fails_without_output(capsys, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = tmp_path / "gen.jsonl"
    code, err = run(capsys, "generate", "--model", str(tmp_path), "--prompts", str(empty),
                    "--out", str(out))  # fmt: skip
    assert code == 1 and "no rows" in err and str(empty) in err
    assert not out.exists()


def test_bad_sampling_value_names_the_key(capsys, tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "hi"}) + "\n")
    code, err = run(
        capsys, "generate", "--model", str(tmp_path), "--prompts", str(prompts),
        "--sampling", json.dumps({"temperature": -1}), "--out", str(tmp_path / "g.jsonl"),
    )  # fmt: skip
    assert code == 1 and "key 'temperature'" in err


def test_unknown_judge_kind_names_it(capsys, tmp_path: Path) -> None:
    gens = tmp_path / "g.jsonl"
    row = {"id": "a", "sample": 0, "prompt": "p", "response": "r"}
    gens.write_text(json.dumps(row) + "\n")
    spec = json.dumps({"kind": "llamaguard"})
    out = str(tmp_path / "j")
    code, err = run(capsys, "judge", "--generations", str(gens), "--judge", "mine", "--spec", spec,
                    "--out", out)  # fmt: skip
    assert code == 1 and "unknown kind 'llamaguard'" in err and "mine" in err
