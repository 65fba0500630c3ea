"""What every subcommand module shares: the registry of subparsers and the output helpers.

Each ``*_cmd`` module decorates its ``register(sub)`` with :func:`subcommand`; ``simulator.cli``
imports this package (which imports every subcommand module) and adds the registered subparsers.
"""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]
Register = Callable[[argparse._SubParsersAction], None]
REGISTRY: list[Register] = []


def subcommand(register: Register) -> Register:
    """Decorator: a function that adds one subparser (and sets its ``handler``)."""
    REGISTRY.append(register)
    return register


def print_json(obj: Any) -> None:
    """Print one JSON object (numpy scalars converted)."""
    print(json.dumps(obj, indent=2, default=_json_default))


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def finite_float(text: str) -> float:
    """An argparse type: a finite number (``nan``, ``inf`` and overflowing values are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text[:40]!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text[:40]!r}")
    return value
