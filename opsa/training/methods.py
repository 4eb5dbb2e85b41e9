"""The training methods: `METHODS`, name -> `Method`, the one place that says what a method
trains from, with which settings, and how. The `train` step (opsa.cli.training), its
multi-process launch (opsa.training.launch), the workflow's train rule and the config's
`training.methods` all read it.

This module imports no torch: the workflow reads it when it plans. Each method's trainer is
imported when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsa.errors import InputError
from opsa.training.config import (
    SAFESTEER_PUBLISHED,
    OPSAConfig,
    SafeSteerConfig,
    SFTConfig,
    TrainConfig,
    parse_config,
)

Trainer = Callable[[Path, dict[str, Path], Any, Path, Path], None]
Settings = Callable[[dict[str, Any]], dict[str, Any]]
ConfigHook = Callable[[dict[str, Any], dict[str, Path], str], dict[str, Any]]


def _unchanged(data: dict[str, Any], inputs: dict[str, Path], where: str) -> dict[str, Any]:
    return data


@dataclass(frozen=True)
class Method:
    name: str  # the name under config training.methods ("opsa")
    config_class: type[TrainConfig]
    inputs: tuple[str, ...]  # named input files besides the model, e.g. ("harmful", "benign")
    train: Trainer  # train(model_dir, inputs, config, out, work_dir)
    uses_contexts: bool  # trains with the selected contexts
    settings: Settings  # the method's own settings from the config's `training:` dict
    # the config data before validation, given the input files (SafeSteer: its token ids)
    with_inputs: ConfigHook = _unchanged

    def check_inputs(self, given: dict[str, Path]) -> dict[str, Path]:
        """`given` if it names every input of the method and nothing else."""
        for name in given:
            if name not in self.inputs:
                raise InputError(
                    f"--input {name}: not an input of method {self.name} "
                    f"(its inputs: {', '.join(self.inputs)})"
                )
        for name in self.inputs:
            if name not in given:
                raise InputError(f"--input {name}=PATH: missing (method {self.name} needs it)")
        return given

    def parse_config(self, data: dict[str, Any], inputs: dict[str, Path], where: str) -> Any:
        """The method's validated config from the `training` settings and the input files."""
        return parse_config(self.config_class, self.with_inputs(data, inputs, where), where)


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add `method` to METHODS under its name."""
    if method.name in METHODS:
        raise ValueError(f"training method '{method.name}' is registered twice")
    if "-" in method.name:
        raise ValueError(f"training method '{method.name}': no hyphen (variants add -seedN)")
    METHODS[method.name] = method
    return method


def method_names() -> list[str]:
    """The names `training.methods` may list."""
    return list(METHODS)


def _train_opsa(model_dir: Path, inputs: dict[str, Path], config: Any, out: Path, work: Path):
    from opsa.training.onpolicy import train_opsa

    train_opsa(
        model_dir, inputs["harmful"], inputs["benign"], inputs["contexts"], config, out, work
    )


def _train_safesteer(model_dir: Path, inputs: dict[str, Path], config: Any, out: Path, work: Path):
    from opsa.training.safesteer import train_safesteer

    train_safesteer(model_dir, inputs["harmful"], inputs["direction"], config, out, work)


def _safety_token_ids(data: dict[str, Any], inputs: dict[str, Path], where: str) -> dict:
    """SafeSteer's token ids come from the safety-token file; ids already in the config (a
    relaunched process's config) must be the same."""
    from opsa.steering.tokens import read_safety_token_ids

    ids = read_safety_token_ids(inputs["safety_tokens"])
    if data.get("token_ids") not in (None, ids):
        raise InputError(f"{where}: token_ids: differ from those of --input safety_tokens")
    return {**data, "token_ids": ids}


def _sft_on(pairs: str) -> Trainer:
    """SFT on the (prompt, response) pairs of input `pairs`."""

    def train(model_dir: Path, inputs: dict[str, Path], config: Any, out: Path, work: Path):
        from opsa.training.sft import train_sft

        train_sft(model_dir, inputs[pairs], config, out, work)

    return train


register(
    Method(
        name="opsa",
        config_class=OPSAConfig,
        inputs=("harmful", "benign", "contexts"),
        train=_train_opsa,
        uses_contexts=True,
        settings=lambda training: training["opsa"],
    )
)
register(
    Method(
        name="safesteer",
        config_class=SafeSteerConfig,
        inputs=("harmful", "direction", "safety_tokens"),
        train=_train_safesteer,
        uses_contexts=False,
        settings=lambda training: {
            **SAFESTEER_PUBLISHED,
            **training["safesteer"]["train"],
            "steering_coefficient": training["safesteer"]["coefficient"],
        },
        with_inputs=_safety_token_ids,
    )
)
register(
    Method(
        name="offpolicy_sd",
        config_class=SFTConfig,
        inputs=("offpolicy_pairs",),
        train=_sft_on("offpolicy_pairs"),
        uses_contexts=True,
        settings=lambda training: training["sft"],
    )
)
register(
    Method(
        name="external_teacher",
        config_class=SFTConfig,
        inputs=("external_pairs",),
        train=_sft_on("external_pairs"),
        uses_contexts=False,
        settings=lambda training: training["sft"],
    )
)
