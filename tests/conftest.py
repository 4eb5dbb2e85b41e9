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


@pytest.fixture(scope="session")
def tiny_llama(embedded_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """`tiny_llama(hidden)`: the directory of a seeded, randomly initialised 2-layer Llama of
    that width with the embedded model's tokenizer (fast enough for many-step tests)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from opsa.models.load import load_tokenizer

    def build(hidden: int) -> Path:
        out = tmp_path_factory.mktemp(f"tiny-llama-h{hidden}")
        tokenizer = load_tokenizer(embedded_model_dir)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=512,
            tie_word_embeddings=True,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(out)
        tokenizer.save_pretrained(out)
        return out

    return build


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


@pytest.fixture
def small_mount(tmp_path: Path):
    """`small_mount(name, size, read_only)`: a tmpfs of that size at tmp_path/name, unmounted
    after the test: a real full or read-only filesystem. Skipped where mounting is not allowed
    (it needs root)."""
    import subprocess

    points: list[Path] = []

    def mount(name: str, size: str = "256k", read_only: bool = False) -> Path:
        point = tmp_path / name
        point.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip("mounting a small tmpfs needs root")
        points.append(point)
        return point

    yield mount
    for point in points:
        subprocess.run(["umount", str(point)], capture_output=True)
