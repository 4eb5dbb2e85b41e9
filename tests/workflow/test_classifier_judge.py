"""A classifier judge configured by path, in the pipeline: a tiny randomly initialised refusal
classifier saved to disk judges the flip-rate scoring, the off-policy filter and the evaluation
of the shared smoke run, as an overlay in a copy of it (scripts/ablation.sh)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.judges.test_classifier import REFUSAL_MAP, save_classifier

MODEL = "smollm2-135m"
TARGETS = [
    f"results/contexts/{MODEL}/flip_rates.csv",
    f"results/training_data/{MODEL}/offpolicy.jsonl",
    f"results/judgments/{MODEL}/base/harmbench.clf.jsonl",
]


@pytest.mark.slow
def test_a_classifier_judges_scoring_the_filter_and_evaluation(
    smoke_clone: Path, tool: Callable, embedded_model_dir: Path
) -> None:
    folder = save_classifier(smoke_clone / "refusal-clf", embedded_model_dir, None)
    overlay = {
        "training": {
            "methods": ["opsa", "offpolicy_sd"],
            "seeds": [0],
            "offpolicy": {"judge": "clf"},
        },
        "models": {"clf": {"source": str(folder), "task": "sequence_classification"}},
        "judges": {"clf": {"kind": "classifier", "model": "clf", "label_map": REFUSAL_MAP}},
        "evaluation": {"safety_judge": "clf"},
        "contexts": {"judge": "clf"},
    }
    (smoke_clone / "clf.yaml").write_text(yaml.safe_dump(overlay))
    tool(["bash", "scripts/ablation.sh", "clf", "clf.yaml", *TARGETS], cwd=smoke_clone)
    run = smoke_clone / "runs/clf"
    judged = [json.loads(x) for x in (run / TARGETS[2]).read_text().splitlines()]
    assert judged and all(r["judge"] == "clf" and r["refused"] in (True, False) for r in judged)
    assert all(r["raw"].startswith("compliance=") for r in judged)  # the classifier's own output
    assert len({r["score"] for r in judged}) > 1  # it read each response
    baseline = run / f"results/contexts/{MODEL}/baseline.judged.jsonl"
    rows = [json.loads(x) for x in baseline.read_text().splitlines()]
    assert rows and all(r["judge"] == "clf" for r in rows)
    pairs = [json.loads(x) for x in (run / TARGETS[1]).read_text().splitlines()]
    assert pairs and {p["judge"] for p in pairs} == {"clf"}
