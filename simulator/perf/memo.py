"""The memo of a step model's prices: one bounded dict for the parts a step is summed from, the
prices of decode-only steps and the detailed step times, and the function that makes a shape's key.

Every value is a pure function of its key, so clearing the memo changes how fast a price comes,
never the price. Keys do not collide: a part's key starts with a string (``part.py``), a price's key
is the ten numbers of a :class:`~simulator.perf.shape.BatchShape`, a detailed time's key is
``("detail", price key)``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .shape import cost_key_function

#: Entries kept before the memo is cleared (bounds memory on runs of millions of distinct steps).
LIMIT = 900_000


class PriceMemo:
    """A step model's memo. ``get`` reads an entry; ``rounded_key`` is :func:`~simulator.perf.shape.cost_key`
    (compiled where built): a shape's fields to the key of its price with the contexts rounded."""

    def __init__(self) -> None:
        self._d: dict[tuple, Any] = {}
        self.entries = self._d   # read-only use: the compiled lookups of perf/lean.py
        self.get = self._d.get
        self.rounded_key: Callable[[tuple], tuple] = cost_key_function()

    def __len__(self) -> int:
        return len(self._d)

    def put(self, key: tuple, value: Any) -> Any:
        """Store ``value`` under ``key`` (clearing the memo first when full); returns ``value``."""
        d = self._d
        if len(d) > LIMIT:
            d.clear()
        d[key] = value
        return value
