"""Compiled parts of the engine (C, through Python's C API), each with a pure-Python reference that
gives bit-identical results:

- ``_decode_set`` (``decode_set.c``; its Python type in ``decode_set_type.c``, numpy buffers in
  ``buffers.c``): ``engine.decode_set.PyDecodeSet``, a scheduler loop's decoding requests;
- ``_step_key`` (``step_key.c``): ``perf.shape.cost_key``, the memo key of a step's price;
- ``_step_price`` (``step_price.c``): ``perf.lean.memoised_sums``, a step's price from its memoised parts.

They are built at install time by ``build.py`` (a hatchling build hook); without a C compiler the
install goes on and the engine runs the references, slower. ``SERVESIM_NATIVE=0`` makes it run the
references even where the extensions are built.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

#: Environment variable that, set to 0, makes the engine use the pure-Python references.
NATIVE_ENV = "SERVESIM_NATIVE"


def enabled() -> bool:
    """Whether the engine may use compiled parts (``SERVESIM_NATIVE`` is not 0)."""
    return os.environ.get(NATIVE_ENV, "1") != "0"


def load(name: str) -> ModuleType | None:
    """The compiled module ``simulator.native.<name>``, or None where it was not built."""
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        return None
