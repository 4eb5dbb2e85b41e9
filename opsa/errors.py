"""The one exception type the command line turns into a one-line error, and the one place a
pydantic validation error becomes such a line."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class InputError(Exception):
    """A bad input: the message names the file, key, column or id and says what is wrong."""


def first_error(e: ValidationError) -> tuple[str, str]:
    """The dotted key and the message of a validation error's first problem."""
    err = e.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(config)"
    return key, err["msg"].removeprefix("Value error, ")  # pydantic's prefix for our checks


def validated(model: type[M], data: Any, where: str) -> M:
    """Build `model` from config data; a bad key or value becomes one InputError line
    `<where>: key '<key>': <problem>`."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        key, msg = first_error(e)
        raise InputError(f"{where}: key '{key}': {msg}") from None
