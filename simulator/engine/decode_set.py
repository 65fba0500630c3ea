"""The requests one scheduler is decoding, as contiguous numpy columns.

A decode step touches every member, so the members' token counts, KV blocks and token times
live in small aligned arrays that whole-batch updates can hit without fancy indexing. The
global request columns are written back whenever a request leaves the set, and the stretch of
steps it spent here is logged for its inter-token latencies (``itl.ItlLog``).
"""
from __future__ import annotations

import numpy as np

from .itl import ItlLog
from .kvcache import BlockPool
from .state import Requests

_I = np.zeros(0, dtype=np.int64)
_F = np.zeros(0, dtype=np.float64)


class DecodeSet:
    """Aligned columns: ids, kv (cached tokens), gen, out, last (token time), maxitl, held (blocks).
    For the ITL log, ``itl.row0``/``itl.last0`` keep the row each member joined at and its token time then."""

    def __init__(self, reqs: Requests, pool: BlockPool, itl: ItlLog, loop: int) -> None:
        self.reqs, self.pool, self.bs = reqs, pool, pool.block_size
        self.itl, self.loop = itl, loop
        self.ids, self.kv, self.gen, self.out, self.held = _I, _I, _I, _I, _I
        self.last, self.maxitl = _F, _F

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ids: np.ndarray) -> None:
        """Requests that start decoding (their global columns are current)."""
        r = self.reqs
        cat = np.concatenate
        self.ids = cat([self.ids, ids])
        self.kv = cat([self.kv, r.kv[ids]])
        self.gen = cat([self.gen, r.generated[ids]])
        self.out = cat([self.out, r.output[ids]])
        self.held = cat([self.held, self.pool.held[ids]])
        last = r.last_token[ids]
        self.last = cat([self.last, last])
        self.maxitl = cat([self.maxitl, r.max_itl[ids]])
        self.itl.join(ids, self.loop, last)

    def write_back(self, sel: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Copy members' columns (all, or a mask/index) to the global columns; returns their ids."""
        r, ids = self.reqs, self.ids[sel]
        r.kv[ids] = self.kv[sel]
        r.generated[ids] = self.gen[sel]
        r.last_token[ids] = self.last[sel]
        r.max_itl[ids] = self.maxitl[sel]
        self.pool.held[ids] = self.held[sel]
        return ids

    def remove(self, mask: np.ndarray) -> np.ndarray:
        """Members selected by ``mask`` leave (written back first); returns their ids."""
        ids = self.write_back(mask)
        self.itl.leave(ids, self.loop)
        keep = ~mask
        self.ids, self.kv, self.gen, self.out = self.ids[keep], self.kv[keep], self.gen[keep], self.out[keep]
        self.held, self.last, self.maxitl = self.held[keep], self.last[keep], self.maxitl[keep]
        return ids

    def extra_blocks(self, steps: int) -> int:
        """Blocks beyond those held that ``steps`` more decode steps need."""
        need = (self.kv + (steps + self.bs - 1)) // self.bs - self.held
        return int(need[need > 0].sum())

    def reserve(self, steps: int) -> bool:
        """Take the blocks the next ``steps`` steps need; False (nothing taken) if the pool is short."""
        need = (self.kv + (steps + self.bs - 1)) // self.bs
        extra = need - self.held
        n = int(extra[extra > 0].sum())
        if n > self.pool.free:
            return False
        if n:
            self.pool.take(n)
            self.held = np.maximum(self.held, need)
        return True

    def grow(self) -> None:
        """Take from the pool the blocks that the current KV lengths need beyond those held (members
        may hold blocks reserved ahead of their KV: a decode run takes its blocks when it starts)."""
        need = (self.kv + (self.bs - 1)) // self.bs
        extra = need - self.held
        n = int(extra[extra > 0].sum())
        if n:
            self.pool.take(n)
            self.held = np.maximum(self.held, need)

    def ctx_sums(self, extra: int, window: int | None, q: int = 1) -> tuple[float, float]:
        """(Σ KV read, Σ capped at the window) of a step ``extra`` steps ahead feeding ``q`` tokens each."""
        n = len(self.ids)
        s = float(self.kv.sum()) + n * (q + extra)
        if not window:
            return s, s
        return s, float(np.minimum(self.kv + (q + extra), window).sum())

    def advance(self, steps: int, t_end: float, first_gap: float, last_dt: float) -> None:
        """``steps`` decode steps done: one token each per step, the last at ``t_end``. Their blocks
        were taken before the steps ran (:meth:`reserve`), so none are allocated here."""
        gap0 = first_gap - self.last
        self.maxitl = np.maximum(self.maxitl, np.maximum(gap0, last_dt))
        self.kv += steps
        self.gen += steps
        self.last[:] = t_end

    def advance_tokens(self, tokens: np.ndarray, t_end: float, first_gap: float, max_dt: float) -> None:
        """Steps done in which member i got ``tokens[i]`` tokens in all (speculative decoding)."""
        gap0 = first_gap - self.last
        self.maxitl = np.maximum(self.maxitl, np.maximum(gap0, max_dt))
        self.kv += tokens
        self.gen += tokens
        self.last[:] = t_end
        self.grow()
