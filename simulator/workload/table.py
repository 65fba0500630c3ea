"""The generated workload: one row per request, stored as numpy columns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas

PREFIX_BLOCK_TOKENS = 512
"""Tokens per prefix block in Mooncake ``hash_ids`` (Qin et al., FAST 2025)."""


def _frozen(values: object, dtype: type) -> np.ndarray:
    arr = np.array(values, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


def take_ragged(offsets: np.ndarray, values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Select ``rows`` of a ragged array given as (``offsets`` of length n+1, flat ``values``).

    Returns the new ``(offsets, values)``; row ``i`` of the result is row ``rows[i]`` of the input.
    """
    rows = np.asarray(rows, dtype=np.int64)
    starts = offsets[:-1][rows]
    lengths = offsets[1:][rows] - starts
    new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    total = int(new_offsets[-1])
    positions = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(total, dtype=np.int64)
    return new_offsets, values[positions]


@dataclass(frozen=True)
class RequestTable:
    """Requests as columns, index = request id.

    - ``arrival_s``: seconds from 0, sorted; all 0 for offline; NaN for closed loop (the engine
      issues those requests itself).
    - ``prompt_tokens``, ``output_tokens``: integers >= 1.
    - ``block_offsets``/``block_ids``: optional ragged prefix-block ids. Request ``i`` covers
      ``block_ids[block_offsets[i]:block_offsets[i+1]]``, one id per ``prefix_block_tokens`` tokens
      of its prompt; equal ids at equal positions mean a shared prefix.
    - ``concurrency``/``think_s``: closed loop only; ``think_s[i]`` is the pause, seconds, after
      request ``i`` finishes before its client sends the next one.
    - ``notes``: remarks on how the table was made (e.g. a trace shorter than asked for).
    """

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    block_offsets: np.ndarray | None = None
    block_ids: np.ndarray | None = None
    prefix_block_tokens: int = PREFIX_BLOCK_TOKENS
    concurrency: int | None = None
    think_s: np.ndarray | None = None
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "arrival_s", _frozen(self.arrival_s, np.float64))
        set_(self, "prompt_tokens", _frozen(self.prompt_tokens, np.int64))
        set_(self, "output_tokens", _frozen(self.output_tokens, np.int64))
        n = len(self.arrival_s)
        for name in ("arrival_s", "prompt_tokens", "output_tokens"):
            arr = getattr(self, name)
            if arr.ndim != 1 or len(arr) != n:
                raise ValueError(f"RequestTable.{name}: needs shape ({n},), got {arr.shape}")
        for name in ("prompt_tokens", "output_tokens"):
            if n and int(getattr(self, name).min()) < 1:
                raise ValueError(f"RequestTable.{name}: lengths must be >= 1")
        known = self.arrival_s[~np.isnan(self.arrival_s)]
        if known.size and (known.size != n or known[0] < 0 or np.any(np.diff(known) < 0)):
            raise ValueError("RequestTable.arrival_s: must be all NaN, or sorted and >= 0")
        if (self.block_offsets is None) != (self.block_ids is None):
            raise ValueError("RequestTable: block_offsets and block_ids go together")
        if self.block_offsets is not None:
            set_(self, "block_offsets", _frozen(self.block_offsets, np.int64))
            set_(self, "block_ids", _frozen(self.block_ids, np.int64))
            off = self.block_offsets
            if len(off) != n + 1 or off[0] != 0 or np.any(np.diff(off) < 0) or off[-1] != len(self.block_ids):
                raise ValueError("RequestTable.block_offsets: must rise from 0 to len(block_ids), n + 1 entries")
        if self.think_s is not None:
            set_(self, "think_s", _frozen(self.think_s, np.float64))
            if self.think_s.shape != (n,):
                raise ValueError(f"RequestTable.think_s: needs shape ({n},)")
        if self.prefix_block_tokens < 1:
            raise ValueError("RequestTable.prefix_block_tokens: must be >= 1")
        set_(self, "notes", tuple(self.notes))

    def __len__(self) -> int:
        return len(self.arrival_s)

    # ---- summaries ---------------------------------------------------------

    @property
    def total_prompt_tokens(self) -> int:
        """Sum of prompt lengths, tokens."""
        return int(self.prompt_tokens.sum())

    @property
    def total_output_tokens(self) -> int:
        """Sum of output lengths, tokens."""
        return int(self.output_tokens.sum())

    @property
    def total_tokens(self) -> int:
        """Prompt plus output tokens over all requests."""
        return self.total_prompt_tokens + self.total_output_tokens

    @property
    def is_closed_loop(self) -> bool:
        """True when the engine decides arrival times (``arrival_s`` is NaN)."""
        return self.concurrency is not None

    @property
    def span_s(self) -> float:
        """Last arrival minus first, seconds (NaN for closed loop, 0 for fewer than 2 requests)."""
        if self.is_closed_loop:
            return float("nan")
        return float(self.arrival_s[-1] - self.arrival_s[0]) if len(self) > 1 else 0.0

    @property
    def offered_rate(self) -> float:
        """Requests per second over the arrival span, ``(n - 1) / span_s`` (NaN when undefined)."""
        span = self.span_s
        return (len(self) - 1) / span if span > 0 else float("nan")

    @property
    def prefix_hashes(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The ragged prefix-block ids as ``(block_offsets, block_ids)``, or None."""
        if self.block_offsets is None or self.block_ids is None:
            return None
        return self.block_offsets, self.block_ids

    def blocks_of(self, i: int) -> np.ndarray:
        """Prefix-block ids of request ``i`` (empty when the table has none)."""
        if self.block_offsets is None or self.block_ids is None:
            return np.empty(0, dtype=np.int64)
        return self.block_ids[self.block_offsets[i] : self.block_offsets[i + 1]]

    # ---- selection ---------------------------------------------------------

    def take(self, rows: np.ndarray) -> RequestTable:
        """A new table of the given rows, in that order (arrivals must stay sorted)."""
        rows = np.asarray(rows, dtype=np.int64)
        offsets = ids = None
        if self.block_offsets is not None and self.block_ids is not None:
            offsets, ids = take_ragged(self.block_offsets, self.block_ids, rows)
        return RequestTable(
            arrival_s=self.arrival_s[rows],
            prompt_tokens=self.prompt_tokens[rows],
            output_tokens=self.output_tokens[rows],
            block_offsets=offsets,
            block_ids=ids,
            prefix_block_tokens=self.prefix_block_tokens,
            concurrency=self.concurrency,
            think_s=None if self.think_s is None else self.think_s[rows],
            notes=self.notes,
        )

    def head(self, n: int) -> RequestTable:
        """The first ``n`` requests (all of them when there are fewer)."""
        return self.take(np.arange(min(n, len(self)), dtype=np.int64))

    def to_frame(self) -> pandas.DataFrame:
        """The per-request columns as a pandas DataFrame (with ``prefix_blocks`` counts when known)."""
        import pandas

        cols: dict[str, np.ndarray] = {
            "arrival_s": self.arrival_s,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
        }
        if self.block_offsets is not None:
            cols["prefix_blocks"] = np.diff(self.block_offsets)
        if self.think_s is not None:
            cols["think_s"] = self.think_s
        return pandas.DataFrame(cols)
