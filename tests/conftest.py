"""Shared fixtures: the embedded model, prepared once and cached, and ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
MODEL_CACHE = (
    Path(os.environ.get("OPSA_TEST_CACHE", Path.home() / ".cache" / "opsa-tests"))
    / "smollm2-135m-instruct"
)


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct as a prepared HF checkpoint (built on first use)."""
    if not (MODEL_CACHE / "model.safetensors").is_file():
        from opsa.models.prepare import prepare_model
        from opsa.models.reference import EMBEDDED, ModelSpec

        prepare_model(ModelSpec(source=EMBEDDED), MODEL_CACHE)
    return MODEL_CACHE


@pytest.fixture(autouse=True)
def hf_runtime():
    """Tests that call a stage's function directly run it on the HF backend (on-the-fly tiny
    models there are too small for vLLM's CPU kernels); tests/generation runs the vLLM backend,
    and the command-line and workflow tests the runtime the command line asks for."""
    from opsa.models.runtime import Runtime, using

    with using(Runtime(backend="hf")):
        yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Real benchmark files in ../shared/data; tests that need them skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the end-to-end tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="end-to-end test: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
