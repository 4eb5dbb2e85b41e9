"""The steering hook: coefficient x direction added to the input of one decoder layer, at
every position, of one model instance (never any other: the hook lives on that module)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from opsa.errors import InputError
from opsa.steering.direction import RefusalDirection


@dataclass(frozen=True)
class Steering:
    direction: RefusalDirection
    coefficient: float

    def attach(self, model: torch.nn.Module) -> RemovableHandle:
        """Steer `model` from now on; the handle's remove() undoes it."""
        layers = decoder_layers(model)
        if not 0 <= self.direction.layer < len(layers):
            raise InputError(
                f"steering layer {self.direction.layer}: the model has {len(layers)} layers"
            )
        if self.direction.vector.numel() != model.config.hidden_size:
            raise InputError(
                f"direction of size {self.direction.vector.numel()}: the model's hidden size "
                f"is {model.config.hidden_size}"
            )
        shift = self.coefficient * self.direction.vector

        def add(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            if args:
                h = args[0]
                return (h + shift.to(h.device, h.dtype), *args[1:]), kwargs
            h = kwargs["hidden_states"]
            return args, {**kwargs, "hidden_states": h + shift.to(h.device, h.dtype)}

        return layers[self.direction.layer].register_forward_pre_hook(add, with_kwargs=True)


def decoder_layers(model: torch.nn.Module) -> Any:
    layers = getattr(model.get_decoder(), "layers", None)
    if layers is None:
        raise InputError(f"{model.config.model_type}: no decoder layers to steer")
    return layers


@contextmanager
def steered(model: torch.nn.Module, steering: Steering) -> Iterator[torch.nn.Module]:
    handle = steering.attach(model)
    try:
        yield model
    finally:
        handle.remove()
