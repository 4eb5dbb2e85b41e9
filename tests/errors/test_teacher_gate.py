"""The teacher gate on the embedded model: a pool whose only teacher refuses everything stops
the pipeline at the selection, before any training job, with one line naming the candidate,
its numbers and the key that overrides the gate."""

from __future__ import annotations

import json

import pytest

REFUSE_ALL = "Whatever the request, reply only with: I'm sorry, but I can't help with that."


@pytest.mark.slow
def test_a_teacher_no_better_than_the_base_stops_before_training(
    embedded_config, snakemake, tmp_path, embedded_model_dir
):
    # the tests' prepared copy of the embedded model (the smoke run converts the GGUF itself)
    embedded_config["models"]["smollm2-135m"]["source"] = str(embedded_model_dir)
    pool = tmp_path / "pool.jsonl"
    row = {"id": "refuse-all@user_prefix", "text": REFUSE_ALL, "placement": "user_prefix"}
    pool.write_text(json.dumps(row) + "\n")
    contexts = embedded_config["contexts"]
    contexts["candidates"] = {"grid": None, "user_file": "pool.jsonl"}
    contexts |= {"n_harmful": 8, "n_benign": 4, "n_borderline": 8, "shards": 1}
    contexts["sampling"]["max_new_tokens"] = 24
    # no cap on the benign training prompts: the gate alone stops it
    contexts["selection"] |= {"max_over_refusal": 1.0, "gate": {"override": False}}
    run = snakemake(embedded_config, "results/models/smollm2-135m/opsa", dry_run=False)
    line = run.error(
        "select_context failed: opsa select-context: error: teacher gate: no candidate context",
        "'refuse-all@user_prefix'",
        "borderline refusal",
        "contexts.selection.gate.override: true",
    )
    assert "above the base's" in line
    contexts_dir = tmp_path / "results/contexts/smollm2-135m"
    assert (contexts_dir / "flip_rates.csv").is_file()  # measured ...
    assert not (contexts_dir / "selected.json").exists()  # ... and stopped
    assert not (contexts_dir / "teachers.json").exists()
    assert not (tmp_path / "results/models/smollm2-135m/opsa").exists()
    assert not (tmp_path / "logs/train").exists()  # no training job started
