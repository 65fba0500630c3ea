"""The k-th smallest gap of requests whose gaps are step ranges plus a few single values, exactly.

A request that decoded in one span (the common case) has the gaps ``steps[lo:hi]`` plus its first
gap; its k-th smallest is the range's k-th or (k-1)-th, or the first gap itself, depending on how
many of the range lie below the first gap: two range queries. Requests with several spans
(preempted, moved between pools) or direct gap sequences bisect on the sorted candidate values,
counting with range queries: about log2(values) rounds of them, done for all such requests at once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .itl import Gaps


def below_first(g: "Gaps", sel: np.ndarray) -> np.ndarray:
    """Per span ``sel``: how many steps of its range are shorter than its first gap (one range count,
    the same for every order statistic asked of the span)."""
    lo, hi, gap0 = g.span_lo[sel], g.span_hi[sel], g.span_gap0[sel]
    return g.matrix.count_less(lo, hi, np.searchsorted(g.sorted_steps, gap0, side="left"))


def kth_simple(g: "Gaps", sel: np.ndarray, k: np.ndarray, below: np.ndarray) -> np.ndarray:
    """Per span ``sel`` (each its request's only source of gaps): the ``k``-th smallest gap. ``below``:
    :func:`below_first` of ``sel``, counted once for every order statistic asked."""
    lo, hi, gap0 = g.span_lo[sel], g.span_hi[sel], g.span_gap0[sel]
    out = gap0.copy()
    rng = k != below
    q = np.where(k > below, k - 1, k)[rng]
    if len(q):
        out[rng] = g.sorted_steps[g.matrix.kth(lo[rng], hi[rng], q)]
    return out


def kth_general(g: "Gaps", who: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The ``k``-th smallest gap of requests ``who`` (``k`` has one or more orders per request, stacked:
    query i asks request ``who[i % len(who)]``)."""
    w = len(who)
    n_q = len(k)
    size = 1 + max(int(who.max()), *(int(a.max()) for a in (g.span_rid, g.seq_rid) if len(a)))
    local = np.full(size, -1, dtype=np.int64)
    local[who] = np.arange(w)
    sp, sq = np.flatnonzero(local[g.span_rid] >= 0), np.flatnonzero(local[g.seq_rid] >= 0)
    cnt = g.seq_n[sq]
    j = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    ex_val = np.concatenate([g.span_gap0[sp], np.repeat(g.seq_a[sq], cnt) + np.repeat(g.seq_s[sq], cnt) * j])
    ex_loc = np.concatenate([local[g.span_rid[sp]], np.repeat(local[g.seq_rid[sq]], cnt)])
    cand = np.sort(np.concatenate([g.sorted_steps, ex_val]))
    nu = len(cand) + 1
    keys = np.sort(ex_loc * nu + np.searchsorted(cand, ex_val, side="left"))
    reps = n_q // w
    p_q = np.concatenate([local[g.span_rid[sp]] + i * w for i in range(reps)])
    p_lo, p_hi = np.tile(g.span_lo[sp], reps), np.tile(g.span_hi[sp], reps)
    q_loc = np.arange(n_q) % w
    base = np.searchsorted(keys, q_loc * nu, side="left")
    lo_t, hi_t = np.zeros(n_q, np.int64), np.full(n_q, len(cand) - 1, np.int64)
    for _ in range(int(len(cand)).bit_length() + 1):
        mid = (lo_t + hi_t) // 2
        thr = np.searchsorted(g.sorted_steps, cand[mid], side="right")
        n_le = np.bincount(p_q, weights=g.matrix.count_less(p_lo, p_hi, thr[p_q]), minlength=n_q)
        n_le += np.searchsorted(keys, q_loc * nu + mid, side="right") - base
        ok = n_le >= k + 1
        hi_t = np.where(ok, mid, hi_t)
        lo_t = np.where(ok, lo_t, np.minimum(mid + 1, hi_t))
    return cand[lo_t]
