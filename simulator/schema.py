"""The base of every schema a user's file is validated against (scenarios, sweeps, profiles, prices).

Shared rules: unknown keys are errors; records are frozen; floats must be finite (``.inf``, ``nan``
and JSON's ``Infinity`` are refused: no field gives infinity a meaning); and ``true``/``false`` are
not numbers (``tp: true`` is refused instead of read as 1); integers beyond 2^53 are refused.
"""
from __future__ import annotations

import functools
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class StrictModel(BaseModel):
    """A frozen record with no unknown keys, finite floats and no booleans where numbers belong."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_number(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if type(value) is int and abs(value) > MAX_INT and isinstance(name, str) and name in cls.model_fields:
                    raise ValueError(f"{name}: {INT_TOO_LARGE}")
                field = cls.model_fields.get(name) if isinstance(value, bool) and isinstance(name, str) else None
                if field is not None and _number_not_bool(field.annotation):
                    raise ValueError(f"{name}: {BOOL_FOR_NUMBER}")
        return data


#: Largest integer any field takes (float64 holds every integer up to it exactly), and the message.
MAX_INT = 2**53
INT_TOO_LARGE = "must be at most 2^53 in size"

#: The message for ``true``/``false`` given where a number belongs.
BOOL_FOR_NUMBER = "give a number, not true/false"


@functools.lru_cache(maxsize=None)
def _number_not_bool(annotation: Any) -> bool:
    """Whether a field typed ``annotation`` takes numbers but not booleans."""
    leaves = _leaves(annotation)
    return bool(leaves & {int, float}) and not leaves & {bool, Any, object}


def _leaves(annotation: Any) -> frozenset[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaves(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return frozenset().union(*(_leaves(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return frozenset(type(a) for a in typing.get_args(annotation))
    return frozenset({annotation})
