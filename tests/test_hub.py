"""The hub's reachability: asked once, and an unreachable hub sets HF_HUB_OFFLINE."""

from __future__ import annotations

import os

import pytest

from opsa.hub import hub_failure, hub_offline


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "")  # restored after the test, whatever sets it
    hub_offline.cache_clear()
    yield
    hub_offline.cache_clear()


def test_unreachable_endpoint_means_offline(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # refused at once
    assert hub_offline()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    line = hub_failure("hub dataset 'a/b'", OSError("first\nsecond"))
    assert line.startswith("hub dataset 'a/b': cannot load offline;") and "\n" not in line


def test_hf_hub_offline_is_honoured_without_asking(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://unused.invalid")
    assert hub_offline()
