"""Reading the pipeline's files: text that is not UTF-8 and bad JSONL lines are named."""

from __future__ import annotations

import pytest

from opsa.errors import InputError
from opsa.records import read_json, read_jsonl, read_text, read_yaml


def test_read_text_names_the_line_of_the_first_bad_byte(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes(b"one\ntwo\nthr\xe9e\n")
    with pytest.raises(InputError, match=rf"^{path}:3: not UTF-8 text \(byte 0xe9\)"):
        read_text(path)


def test_read_jsonl_skips_blank_lines_and_names_bad_ones(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\n{"a": 2\n')
    with pytest.raises(InputError, match=rf"^{path}:2: not valid JSON \(.* at column 8\)"):
        read_jsonl(path)
    path.write_text('{"a": 1}\n3\n')
    with pytest.raises(InputError, match=rf"^{path}:2: not a JSON object \(a int\)"):
        read_jsonl(path)


def test_read_json_names_the_line(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{\n  "a": 1,\n}\n')
    with pytest.raises(InputError, match=rf"^{path}:3: not valid JSON"):
        read_json(path)


def test_read_yaml_names_repeated_keys_and_syntax_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\nb:\n  c: 2\n  c: 3\n")
    with pytest.raises(InputError, match=rf"^{path}:4: key 'c' repeated \(first at line 3"):
        read_yaml(path)
    path.write_text("a: [1,\n")
    with pytest.raises(InputError, match=rf"^{path}:2: YAML syntax error"):
        read_yaml(path)
    path.write_text("a: {b: 1}\n")
    assert read_yaml(path) == {"a": {"b": 1}}
