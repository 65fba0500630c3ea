"""Step log of every replica: one row per executed step or run of identical decode steps.

Rows are appended to one flat ``array.array`` of doubles while recording (one cheap append per
row; integer fields are exact in a double below 2**53) and become numpy columns afterwards.
A *run* covers ``steps`` consecutive decode steps of the same batch whose durations grow
linearly from ``dt_first`` to ``dt_last`` (the context grows by one token per sequence per step).
"""
from __future__ import annotations

from array import array

import numpy as np

COLUMNS = ("t_start", "t_end", "replica", "steps", "decode_seqs", "prefill_tokens", "dt_first", "dt_last",
           "flops", "bytes", "running", "waiting", "kv_blocks")
_INT = {"replica": np.int32, "steps": np.int64, "decode_seqs": np.int64, "prefill_tokens": np.int64,
        "running": np.int64, "waiting": np.int64, "kv_blocks": np.int64}


class StepLog:
    """Append-only table of steps; :meth:`frame` returns numpy columns."""

    def __init__(self) -> None:
        self._rows = array("d")
        self._extend = self._rows.extend

    def add(self, t_start: float, t_end: float, replica: int, steps: int, decode_seqs: int,
            prefill_tokens: int, dt_first: float, dt_last: float, flops: float, nbytes: float,
            running: int, waiting: int, kv_blocks: int) -> None:
        """Record one step or run (times in seconds, flops and bytes summed over its steps)."""
        self._extend((t_start, t_end, replica, steps, decode_seqs, prefill_tokens, dt_first, dt_last, flops,
                      nbytes, running, waiting, kv_blocks))

    def __len__(self) -> int:
        return len(self._rows) // len(COLUMNS)

    def frame(self) -> dict[str, np.ndarray]:
        """Columns as numpy arrays, sorted by end time."""
        rows = np.frombuffer(self._rows, dtype=np.float64).reshape(-1, len(COLUMNS))
        order = np.argsort(rows[:, 1], kind="stable")
        return {c: rows[order, i].astype(_INT.get(c, np.float64)) for i, c in enumerate(COLUMNS)}
