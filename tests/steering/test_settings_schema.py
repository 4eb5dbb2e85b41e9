"""The config schema's training.safesteer blocks name the same keys as the pydantic models
their steps validate with (a key valid in one must not be rejected by the other)."""

from __future__ import annotations

from pathlib import Path

import yaml

from opsa.steering.direction import DirectionSettings
from opsa.steering.teacher import SteeredTeacherCheck
from opsa.steering.tokens import TokenSelection
from opsa.training.config import OPSAConfig, SafeSteerConfig

SCHEMA = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "workflow/schemas/config.schema.yaml").read_text()
)
DEFS = SCHEMA["definitions"]
SAFESTEER = SCHEMA["properties"]["training"]["properties"]["safesteer"]


def test_direction_and_token_blocks_are_the_settings_models():
    for name, model in (
        ("steering_direction", DirectionSettings),
        ("safety_tokens", TokenSelection),
        ("steered_teacher", SteeredTeacherCheck),
    ):
        assert DEFS[name]["additionalProperties"] is False
        assert set(DEFS[name]["properties"]) == set(model.model_fields), name


def test_safesteer_block_is_the_opsa_keys_plus_its_coefficient():
    assert SAFESTEER["properties"]["train"]["$ref"] == "#/definitions/train_opsa"
    own = set(SafeSteerConfig.model_fields) - set(OPSAConfig.model_fields)
    assert own == {"steering_coefficient"}  # given as training.safesteer.coefficient
    assert set(SAFESTEER["properties"]) == {
        "coefficient",
        "direction",
        "teacher",
        "tokens",
        "train",
    }
    assert "safesteer" in SCHEMA["properties"]["training"]["properties"]["methods"]["items"]["enum"]
