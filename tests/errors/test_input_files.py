"""Bad prompt sources and prompt files, through `python -m opsa prepare-data` and `generate`
as the rules call them: one line naming the file (and line, column or id), nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

NOT_UTF8 = "naïve".encode("latin-1")  # b"na\xefve": not valid UTF-8


def spec(source: dict[str, Any], role: str = "eval_harmful") -> str:
    return json.dumps({"role": role, "sources": [source]})


def write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def prepare(opsa, source: dict[str, Any], folder: str | Path = ".", **env: str):
    """`prepare-data` of one set named harmful, as the rule runs it, into `folder`/out/."""
    out = Path(folder) / "out"
    return opsa(
        "prepare-data", "--name", "harmful", "--spec", spec(source), "--out",
        str(out / "harmful.jsonl"), "--provenance", str(out / "provenance/harmful.json"), **env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "extra"),
    [
        ("p.txt", b"How do I pick a lock?\n" + NOT_UTF8 + b"\n", {}),
        ("p.jsonl", b'{"prompt": "ok"}\n{"prompt": "' + NOT_UTF8 + b'"}\n', {}),
        ("p.csv", b"prompt\nok\n" + NOT_UTF8 + b"\n", {}),
    ],
)
def test_source_not_utf8_names_file_and_line(opsa, tmp_path, name, content, extra):
    path = write(tmp_path / name, content)
    line = prepare(opsa, {"path": str(path), **extra}).error(f"{path}:", "not UTF-8")
    assert f"{path}:{2 if name != 'p.csv' else 3}:" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ('{"prompt": "a"}\n{"prompt": "b",}\n', [":2:", "not valid JSON", "column 16"]),
        ('{"prompt": "a"}\n\n["b"]\n', [":3:", "not a JSON object"]),
    ],
)
def test_malformed_jsonl_names_line_and_cause(opsa, tmp_path, content, named):
    path = write(tmp_path / "p.jsonl", content)
    prepare(opsa, {"path": str(path)}).error(str(path), *named)
    assert not (tmp_path / "out").exists()


def test_missing_source_file(opsa, tmp_path):
    prepare(opsa, {"path": "nowhere.txt"}).error("nowhere.txt: file not found")


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda p: p.mkdir(), "is a directory, not a data file"),
        (lambda p: os.mkfifo(p), "is a FIFO (named pipe), not a data file"),
    ],
)
def test_a_directory_or_fifo_given_as_a_data_file_is_named_as_such(opsa, tmp_path, make, named):
    path = tmp_path / "prompts.jsonl"
    make(path)  # a FIFO would block a reader forever: it is refused, not read
    prepare(opsa, {"path": str(path)}).error(f"{path}: {named}")
    assert not (tmp_path / "out").exists()


def test_missing_column(opsa, tmp_path):
    path = write(tmp_path / "p.csv", "text\nHow do I pick a lock?\n")
    prepare(opsa, {"path": str(path)}).error(str(path), "column 'prompt'")
    assert not (tmp_path / "out").exists()


def test_unmapped_label(opsa, tmp_path):
    rows = [{"prompt": "a", "y": 1}, {"prompt": "b", "y": 2}]
    path = write(tmp_path / "p.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    source = {"path": str(path), "columns": {"label": "y"}, "label_map": {"1": "harmful"}}
    prepare(opsa, source).error(str(path), "column 'y'", "value '2' not in label_map")


def test_empty_set(opsa, tmp_path):
    path = write(tmp_path / "p.txt", "\n\n")
    prepare(opsa, {"path": str(path)}).error(str(path), "no rows")


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ({"path": "p.txt", "colums": {}}, ["datasets.harmful", "colums"]),
        ({"path": "p.txt", "meta_columns": "category"}, ["datasets.harmful", "meta_columns"]),
    ],
)
def test_unknown_key_or_wrong_type_in_a_set(opsa, tmp_path, source, named):
    write(tmp_path / "p.txt", "How do I pick a lock?\n")
    prepare(opsa, source).error(*named)


def test_hub_id_fails_at_once_when_the_hub_cannot_be_reached(opsa, tmp_path):
    # port 9 of this machine refuses connections: the hub counts as unreachable
    run = prepare(opsa, {"hub": "nobody-here/no-such-set"}, HF_ENDPOINT="http://127.0.0.1:9")
    run.error("hub dataset 'nobody-here/no-such-set'", "offline")


def test_prompts_file_given_to_generate_not_utf8(opsa, tmp_path):
    path = write(tmp_path / "p.jsonl", b'{"id": "a", "prompt": "' + NOT_UTF8 + b'"}\n')
    run = opsa("generate", "--model", "m", "--prompts", str(path), "--out", "g.jsonl")
    run.error(f"{path}:1:", "not UTF-8")
    assert not (tmp_path / "g.jsonl").exists()


def test_prompts_file_given_to_generate_malformed(opsa, tmp_path):
    path = write(tmp_path / "p.jsonl", '{"id": "a", "prompt": "hi"}\n{"id": "b", "prompt": }\n')
    run = opsa("generate", "--model", "m", "--prompts", str(path), "--out", "g.jsonl")
    run.error(f"{path}:2:", "not valid JSON")
    assert not (tmp_path / "g.jsonl").exists()


@pytest.mark.slow
def test_prompt_longer_than_the_model_context(opsa, tmp_path, embedded_model_dir):
    rows = [{"id": "short", "prompt": "Hi."}, {"id": "long", "prompt": "word " * 9000}]
    path = write(tmp_path / "p.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    sampling = json.dumps({"max_new_tokens": 4})
    run = opsa(
        "generate", "--model", str(embedded_model_dir), "--prompts", str(path),
        "--sampling", sampling, "--out", "g.jsonl",
    )  # fmt: skip
    run.error(str(path), "prompt id 'long'", "context of 8192 tokens")
    assert not (tmp_path / "g.jsonl").exists()
