"""The config schema (checked before any rule runs) and the pydantic models (checked inside each
step) must name the same keys, or a key valid in one would be rejected by the other."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from opsa.contexts.candidates import CandidatesConfig
from opsa.contexts.search import SearchConfig
from opsa.contexts.select import SelectionConfig
from opsa.data.prepare import SetSpec
from opsa.data.sources import ChoiceSpec, SourceSpec
from opsa.evaluation.code_exec import ExecLimits
from opsa.generation.engine import SamplingParams
from opsa.judges.spec import JudgeSpec
from opsa.models.reference import ModelSpec
from opsa.models.runtime import RuntimeConfig, VLLMSettings
from opsa.training.config import OPSAConfig, SFTConfig, TrainConfig

SCHEMA = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "workflow/schemas/config.schema.yaml").read_text()
)
DEFS = SCHEMA["definitions"]
PROPS = SCHEMA["properties"]
CONTEXTS = PROPS["contexts"]["properties"]


def fields(model: type[BaseModel], minus: type[BaseModel] | None = None) -> set[str]:
    return set(model.model_fields) - (set(minus.model_fields) if minus else set())


@pytest.mark.parametrize(
    ("schema", "model", "minus"),
    [
        (DEFS["sampling"], SamplingParams, None),
        (DEFS["source"], SourceSpec, None),
        (DEFS["source"]["properties"]["choices"], ChoiceSpec, None),
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
    ],
)
def test_schema_keys_are_the_model_fields(
    schema: dict, model: type[BaseModel], minus: type[BaseModel] | None
) -> None:
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == fields(model, minus), model.__name__
