"""Step log of every replica: one row per executed step or run of identical decode steps.

Columns are ``array.array`` while recording (cheap appends) and numpy arrays afterwards.
A *run* covers ``steps`` consecutive decode steps of the same batch whose durations grow
linearly from ``dt_first`` to ``dt_last`` (the context grows by one token per sequence per step).
"""
from __future__ import annotations

from array import array

import numpy as np

COLUMNS = ("t_start", "t_end", "replica", "steps", "decode_seqs", "prefill_tokens", "dt_first", "dt_last",
           "flops", "bytes", "running", "waiting", "kv_blocks")
_TYPES = {"replica": "i", "steps": "q", "decode_seqs": "q", "prefill_tokens": "q", "running": "q",
          "waiting": "q", "kv_blocks": "q"}


class StepLog:
    """Append-only table of steps; :meth:`frame` returns numpy columns."""

    def __init__(self) -> None:
        self._cols = {c: array(_TYPES.get(c, "d")) for c in COLUMNS}
        self._append = [self._cols[c].append for c in COLUMNS]

    def add(self, t_start: float, t_end: float, replica: int, steps: int, decode_seqs: int,
            prefill_tokens: int, dt_first: float, dt_last: float, flops: float, nbytes: float,
            running: int, waiting: int, kv_blocks: int) -> None:
        """Record one step or run (times in seconds, flops and bytes summed over its steps)."""
        a = self._append
        a[0](t_start); a[1](t_end); a[2](replica); a[3](steps); a[4](decode_seqs); a[5](prefill_tokens)
        a[6](dt_first); a[7](dt_last); a[8](flops); a[9](nbytes); a[10](running); a[11](waiting)
        a[12](kv_blocks)

    def __len__(self) -> int:
        return len(self._cols["t_end"])

    def frame(self) -> dict[str, np.ndarray]:
        """Columns as numpy arrays, sorted by end time."""
        out = {c: np.frombuffer(self._cols[c], dtype=np.int32 if _TYPES.get(c) == "i" else
                                (np.int64 if c in _TYPES else np.float64)).copy() for c in COLUMNS}
        order = np.argsort(out["t_end"], kind="stable")
        return {c: v[order] for c, v in out.items()}
