"""Stages are siblings over a small library: a library module imports no stage, and the
analyses import only the library (so an analysis never reaches into a trainer's internals)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "opsa"
LIBRARY = {
    "errors", "records", "hub", "layout", "figures", "teachers", "models", "prompting", "distill",
    "generation", "judges",
}  # fmt: skip
STAGES = {
    "data", "contexts", "training", "baselines", "steering", "evaluation", "analysis",
    "jailbreak", "report",
}  # fmt: skip


def area(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def imported_areas(area_name: str) -> dict[str, set[str]]:
    """Every opsa area the modules of `area_name` import, with the importing files."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if area(path) != area_name:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                parts = module.split(".")
                if parts[0] == "opsa" and len(parts) > 1 and parts[1] != area_name:
                    found.setdefault(parts[1], set()).add(path.name)
    return found


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_a_library_module_imports_no_stage(name: str) -> None:
    assert set(imported_areas(name)) & STAGES == set(), imported_areas(name)


def test_the_analyses_import_only_the_library() -> None:
    assert set(imported_areas("analysis")) <= LIBRARY, imported_areas("analysis")


def test_the_areas_are_all_known() -> None:
    """A new package is placed in the library or among the stages, deliberately."""
    known = LIBRARY | STAGES | {"cli", "steering"}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= known, packages - known
