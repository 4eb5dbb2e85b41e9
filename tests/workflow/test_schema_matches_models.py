"""The config schema (checked before any rule runs) and its reference docs/config.md are
generated from the typed root, opsa.config.PipelineConfig: the committed files are the generated
ones, and the schema names the same keys as the pydantic models each step validates with, or a
key valid in one would be rejected by the other."""

from __future__ import annotations

import pytest
import yaml
from pydantic import BaseModel

from opsa.analysis.settings import TokenAnalysisSettings
from opsa.config_docs import DOCS_FILE, SCHEMA_FILE, docs_markdown, schema_yaml
from opsa.contexts.candidates import CandidatesConfig
from opsa.contexts.search import SearchConfig
from opsa.contexts.select import SelectionConfig
from opsa.data.prepare import SetSpec
from opsa.data.sources import ChoiceSpec, SourceSpec
from opsa.evaluation.code_exec import ExecLimits
from opsa.generation.engine import SamplingParams
from opsa.jailbreak.settings import JailbreakSettings
from opsa.judges.spec import JudgeSpec
from opsa.models.reference import ModelSpec
from opsa.models.runtime import RuntimeConfig, VLLMSettings
from opsa.training.config import OPSAConfig, SFTConfig, TrainConfig

FIX = "python -m opsa.config_docs"
SCHEMA = yaml.safe_load(SCHEMA_FILE.read_text())
DEFS = SCHEMA["definitions"]
PROPS = SCHEMA["properties"]
CONTEXTS = PROPS["contexts"]["properties"]
SOURCE = DEFS["dataset"]["properties"]["sources"]["items"]
ANALYSIS = PROPS["analysis"]["properties"]


def test_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text() == schema_yaml(), f"{SCHEMA_FILE} is stale: {FIX}"


def test_committed_reference_is_the_generated_one() -> None:
    assert DOCS_FILE.read_text() == docs_markdown(), f"{DOCS_FILE} is stale: {FIX}"


def fields(model: type[BaseModel], minus: type[BaseModel] | None = None) -> set[str]:
    return set(model.model_fields) - (set(minus.model_fields) if minus else set())


@pytest.mark.parametrize(
    ("schema", "model", "minus"),
    [
        (DEFS["sampling"], SamplingParams, None),
        (SOURCE, SourceSpec, None),
        (SOURCE["properties"]["choices"], ChoiceSpec, None),
        (PROPS["training"]["properties"]["external"]["properties"]["source"], SourceSpec, None),
        (PROPS["evaluation"]["properties"]["code_execution"], ExecLimits, None),
        (DEFS["dataset"], SetSpec, None),
        (DEFS["judge"], JudgeSpec, None),
        (DEFS["train_common"], TrainConfig, None),
        (DEFS["train_opsa"], OPSAConfig, TrainConfig),
        (DEFS["train_sft"], SFTConfig, TrainConfig),
        (PROPS["models"]["additionalProperties"], ModelSpec, None),
        (CONTEXTS["selection"], SelectionConfig, None),
        (CONTEXTS["search"], SearchConfig, None),
        (CONTEXTS["candidates"], CandidatesConfig, None),
        (PROPS["runtime"], RuntimeConfig, None),
        (PROPS["runtime"]["properties"]["vllm"], VLLMSettings, None),
        (ANALYSIS["jailbreak"]["properties"]["sampling"], SamplingParams, None),
    ],
)
def test_schema_keys_are_the_model_fields(
    schema: dict, model: type[BaseModel], minus: type[BaseModel] | None
) -> None:
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == fields(model, minus), model.__name__


@pytest.mark.parametrize(
    ("name", "model", "own"),
    [
        ("token_divergence", TokenAnalysisSettings, {"enabled", "dataset"}),
        ("jailbreak", JailbreakSettings, {"enabled", "dataset", "judge", "attacker"}),
    ],
)
def test_an_analysis_block_is_its_settings_and_the_keys_the_workflow_reads(
    name: str, model: type[BaseModel], own: set[str]
) -> None:
    keys = list(ANALYSIS[name]["properties"])
    assert set(keys) == fields(model) | own
    assert set(keys[: len(own)]) == own  # the block's own keys first
