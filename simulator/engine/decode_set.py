"""The requests one scheduler is decoding, as contiguous numpy columns plus running totals.

A decode step touches every member, so the members' KV lengths, blocks and token times live in
small aligned arrays that whole-batch updates can hit without fancy indexing. The totals a
scheduler asks for every step (context tokens, blocks held, tokens until the first member
finishes) are kept as Python integers, updated when members join, advance or leave, so planning
a step costs no pass over the columns. The global request columns are written back whenever a
request leaves the set, and the stretch of steps it spent here is logged for its inter-token
latencies (``itl.ItlLog``).

Two implementations with the same methods and bit-identical results: :class:`PyDecodeSet` here
(numpy columns, the reference), and a compiled one (``simulator/native/decode_set.c``, members'
columns in C arrays) that the engine uses when it was built; :func:`decode_set_type` picks.
"""
from __future__ import annotations

import numpy as np

from ..native import enabled, load
from .itl import ItlLog
from .kvcache import BlockPool
from .state import Requests

_I = np.zeros(0, dtype=np.int64)
_F = np.zeros(0, dtype=np.float64)
_NONE_LEFT = 1 << 62   # tokens until the first member finishes, when there is none


class PyDecodeSet:
    """Aligned columns: ids, kv (cached tokens), off (generated − kv, fixed while a member), end (kv
    at which it has its last token), held (blocks), last (token time), maxitl. Totals: ``n`` (members),
    ``kv_sum``, ``held_sum``, ``left_min`` (fewest tokens any member has still to generate).
    For the ITL log, ``itl.row0``/``itl.last0`` keep the row each member joined at and its token time then."""

    def __init__(self, reqs: Requests, pool: BlockPool, itl: ItlLog, loop: int) -> None:
        self.reqs, self.pool, self.bs = reqs, pool, pool.block_size
        self.itl, self.loop = itl, loop
        self.ids, self.kv, self.off, self.end, self.held = _I, _I, _I, _I, _I
        self.last, self.maxitl = _F, _F
        self.n = self.kv_sum = self.held_sum = 0
        self.left_min = _NONE_LEFT

    def __len__(self) -> int:
        return self.n

    def left(self) -> np.ndarray:
        """Tokens each member has still to generate."""
        return self.end - self.kv

    def add(self, ids: np.ndarray) -> None:
        """Requests that start decoding (their global columns are current)."""
        r = self.reqs
        cat = np.concatenate
        kv, gen, held = r.kv[ids], r.generated[ids], self.pool.held[ids]
        off = gen - kv
        end = r.output[ids] - off
        self.ids = cat([self.ids, ids])
        self.kv = cat([self.kv, kv])
        self.off = cat([self.off, off])
        self.end = cat([self.end, end])
        self.held = cat([self.held, held])
        last = r.last_token[ids]
        self.last = cat([self.last, last])
        self.maxitl = cat([self.maxitl, r.max_itl[ids]])
        self.n = len(self.ids)
        self.kv_sum += int(kv.sum())
        self.held_sum += int(held.sum())
        self.left_min = min(self.left_min, int((end - kv).min()))
        self.itl.join(ids, self.loop, last)

    def write_back(self, sel: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Copy members' columns (all, or a mask/index) to the global columns; returns their ids."""
        r, ids = self.reqs, self.ids[sel]
        kv = self.kv[sel]
        r.kv[ids] = kv
        r.generated[ids] = kv + self.off[sel]
        r.last_token[ids] = self.last[sel]
        r.max_itl[ids] = self.maxitl[sel]
        self.pool.held[ids] = self.held[sel]
        return ids

    def remove(self, mask: np.ndarray) -> np.ndarray:
        """Members selected by ``mask`` leave (written back first); returns their ids."""
        ids = self.write_back(mask)
        self.itl.leave(ids, self.loop)
        keep = ~mask
        self.ids, self.kv, self.off, self.end = self.ids[keep], self.kv[keep], self.off[keep], self.end[keep]
        self.held, self.last, self.maxitl = self.held[keep], self.last[keep], self.maxitl[keep]
        self.n = len(self.ids)
        self.kv_sum = int(self.kv.sum())
        self.held_sum = int(self.held.sum())
        self.left_min = int((self.end - self.kv).min()) if self.n else _NONE_LEFT
        return ids

    def remove_finished(self) -> np.ndarray:
        """Members that have generated their last token leave; returns their ids."""
        return self.remove(self.finished())

    def finished(self) -> np.ndarray:
        """Mask of the members that have generated their last token."""
        return self.kv >= self.end

    def _blocks(self, steps: int) -> np.ndarray:
        """Blocks each member's KV needs after ``steps`` more decode steps."""
        return (self.kv + (steps + self.bs - 1)) // self.bs

    def extra_blocks(self, steps: int) -> int:
        """Blocks beyond those held that ``steps`` more decode steps need."""
        return int(np.maximum(self._blocks(steps), self.held).sum()) - self.held_sum

    def reserve(self, steps: int) -> bool:
        """Take the blocks the next ``steps`` steps need; False (nothing taken) if the pool is short."""
        return self.hold(self._blocks(steps))

    def hold(self, target: np.ndarray) -> bool:
        """Take from the pool what raises each member's blocks to ``target`` (never below those held);
        False (nothing taken) if the pool is short."""
        new = np.maximum(target, self.held)
        n = int(new.sum()) - self.held_sum
        if n > self.pool.free:
            return False
        self._take(new, n)
        return True

    def grow(self) -> None:
        """Take from the pool the blocks that the current KV lengths need beyond those held (members
        may hold blocks reserved ahead of their KV: a decode run takes its blocks when it starts)."""
        new = np.maximum(self._blocks(0), self.held)
        self._take(new, int(new.sum()) - self.held_sum)

    def _take(self, new: np.ndarray, n: int) -> None:
        """Members now hold ``new`` blocks, ``n`` more than before (the pool raises if short)."""
        if n:
            self.pool.take(n)
            self.held = new
            self.held_sum += n

    def ctx_sums(self, extra: int, window: int | None, q: int = 1) -> tuple[float, float]:
        """(Σ KV read, Σ capped at the window) of a step ``extra`` steps ahead feeding ``q`` tokens each."""
        s = float(self.kv_sum + self.n * (q + extra))
        if not window:
            return s, s
        return s, float(np.minimum(self.kv + (q + extra), window).sum())

    def advance(self, steps: int, t_end: float, first_gap: float, last_dt: float) -> None:
        """``steps`` decode steps done: one token each per step, the last at ``t_end``. Their blocks
        were taken before the steps ran (:meth:`reserve`), so none are allocated here."""
        np.maximum(self.maxitl, np.maximum(first_gap - self.last, last_dt), out=self.maxitl)
        self.kv += steps
        self.kv_sum += steps * self.n
        self.left_min -= steps
        self.last.fill(t_end)

    def advance_tokens(self, tokens: np.ndarray, t_end: float, first_gap: float, max_dt: float) -> None:
        """Steps done in which member i got ``tokens[i]`` tokens in all (speculative decoding)."""
        np.maximum(self.maxitl, np.maximum(first_gap - self.last, max_dt), out=self.maxitl)
        self.kv += tokens
        self.kv_sum += int(tokens.sum())
        self.left_min = int((self.end - self.kv).min()) if self.n else _NONE_LEFT
        self.last.fill(t_end)
        self.grow()


_native = load("_decode_set")
NativeDecodeSet: type | None = _native.DecodeSet if _native is not None else None


def decode_set_type() -> type:
    """The decode set class the engine uses: the compiled one if built and not switched off by
    ``SERVESIM_NATIVE=0``, else :class:`PyDecodeSet`."""
    return NativeDecodeSet if NativeDecodeSet is not None and enabled() else PyDecodeSet
