"""Step log of every replica: one row per executed step or run of identical decode steps.

Rows are appended to one flat ``array.array`` of doubles while recording (one cheap append per
row; integer fields are exact in a double below 2**53) and become numpy columns afterwards.
A *run* covers ``steps`` consecutive decode steps of the same batch whose durations grow
linearly from ``dt_first`` to ``dt_last`` (the context grows by one token per sequence per step).
"""
from __future__ import annotations

from array import array
from typing import NamedTuple

import numpy as np


class StepRow(NamedTuple):
    """One row of the step log: a step, or a run of ``steps`` decode steps (times in seconds, FLOPs
    and bytes summed over its steps; ``running``, ``waiting`` and ``kv_blocks`` at its end)."""

    t_start: float
    t_end: float
    replica: int
    steps: int
    decode_seqs: int
    prefill_tokens: int
    dt_first: float
    dt_last: float
    flops: float
    bytes: float
    running: int
    waiting: int
    kv_blocks: int


COLUMNS = StepRow._fields
_INT = {"replica": np.int32, "steps": np.int64, "decode_seqs": np.int64, "prefill_tokens": np.int64,
        "running": np.int64, "waiting": np.int64, "kv_blocks": np.int64}


class StepLog:
    """Append-only table of steps; :meth:`frame` returns numpy columns."""

    def __init__(self) -> None:
        self._rows = array("d")
        self._extend = self._rows.extend

    def add(self, row: StepRow) -> None:
        """Record one step or run (a :class:`StepRow`: its fields go in as they are, in field order)."""
        self._extend(row)

    def __len__(self) -> int:
        return len(self._rows) // len(COLUMNS)

    def frame(self) -> dict[str, np.ndarray]:
        """Columns as numpy arrays, sorted by end time."""
        rows = np.frombuffer(self._rows, dtype=np.float64).reshape(-1, len(COLUMNS))
        order = np.argsort(rows[:, 1], kind="stable")
        return {c: rows[order, i].astype(_INT.get(c, np.float64)) for i, c in enumerate(COLUMNS)}
