"""Files generated from the package's single declarations are current: dvc.yaml from the
layout and the steps' code (opsa.dvc_stages)."""

from __future__ import annotations

from pathlib import Path

from opsa.dvc_stages import STAGES, dvc_yaml
from opsa.layout import folder

ROOT = Path(__file__).resolve().parents[2]


def test_committed_dvc_yaml_is_the_generated_one() -> None:
    assert (ROOT / "dvc.yaml").read_text() == dvc_yaml(), (
        "dvc.yaml is stale: python -m opsa.dvc_stages > dvc.yaml"
    )


def test_every_stage_output_folder_is_under_results() -> None:
    for stage in STAGES:
        for template in stage.outs:
            assert folder(template).startswith("results/"), (stage.name, template)


def test_a_stage_depends_on_the_code_of_its_steps() -> None:
    """Editing a training module changes the train stage's dependencies, not generate's."""
    entries = {stage.name: stage for stage in STAGES}
    from opsa.dvc_stages import stage_entry

    assert "opsa/training" in stage_entry(entries["train"])["deps"]
    assert "opsa/training" not in stage_entry(entries["generate"])["deps"]
