"""The layout: variant names and the output templates every rule and report reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opsa.errors import InputError
from opsa.layout import BASE, Paths, Variant, fill, folder, variant_pattern

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("base", BASE),
        ("opsa", Variant("opsa")),
        ("offpolicy_sd-seed2", Variant("offpolicy_sd", seed=2)),
        ("opsa-frac25", Variant("opsa", fraction=0.25)),
        ("opsa-tfrmiddle", Variant("opsa", tfr="middle")),
    ],
)
def test_a_name_parses_to_its_variant_and_back(name: str, variant: Variant) -> None:
    assert Variant.parse(name) == variant
    assert variant.name == name
    assert re.fullmatch(variant_pattern(variant.method), name)


@pytest.mark.parametrize("name", ["opsa-seedx", "opsa-tfrfirst", "opsa seed", ""])
def test_a_name_the_workflow_cannot_make_is_an_error_naming_it(name: str) -> None:
    with pytest.raises(InputError, match=f"variant '{name}'"):
        Variant.parse(name)


def test_the_first_seed_is_the_bare_name() -> None:
    assert Variant("opsa").seed_or(3) == 3 and Variant("opsa", seed=1).seed_or(3) == 1


def test_templates_fill_and_fold_into_their_folders() -> None:
    assert fill(Paths.model, model="m", variant=BASE) == "results/models/m/base"
    assert folder(Paths.selected) == "results/contexts"
    assert folder(Paths.summary_csv) == "results/report"


def test_no_rule_file_spells_a_results_path_or_an_out_dir() -> None:
    rules = sorted((ROOT / "workflow/rules").glob("*.smk"))
    assert sum(path.read_text().count("results/") for path in rules) <= 10
    assert not any("--out-dir" in path.read_text() for path in rules)


def test_variant_names_are_parsed_only_by_the_layout() -> None:
    """No other module or rule file decodes a `-seed`/`-frac`/`-tfr` suffix."""
    pattern = re.compile(r"-(seed|frac|tfr)\(|\"-seed\"")
    sources = [*(ROOT / "opsa").rglob("*.py"), *(ROOT / "workflow").rglob("*.smk")]
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if path.name != "layout.py" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
