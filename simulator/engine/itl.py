"""Per-request inter-token latencies, exact, from a compact record of the engine's steps.

Every scheduler loop logs its steps (start, first step's duration, slope, steps: a decode run's
durations grow linearly). A request decoding in a loop from row a to row b (its *span*) got one
token delivery per step of those rows; the first gap is measured from its previous token. Gaps
outside spans (the token a recompute prefill ends with; static batches) are logged directly as
arithmetic sequences. A step that delivers several tokens at once (speculative decoding) counts as
one gap, as a streaming client sees it.

Everything is held in flat arrays (40 bytes per step row, 40 per span, 32 per direct sequence) and
no gap is expanded per token: a loop's steps are laid out once as one array of step durations (one
value per step, shared by every request in the batch), so a span is a contiguous range of it plus
its first gap. :class:`~.rank_matrix.RankMatrix` answers the k-th smallest of any range exactly,
so a request's p50/p99 (numpy's linear interpolation between order statistics) are exact at any
request count, in time and memory proportional to steps and spans, not to tokens.
"""
from __future__ import annotations

from array import array
from typing import NamedTuple

import numpy as np

from .itl_select import below_first, kth_general, kth_simple
from .rank_matrix import RankMatrix


#: Spans queried at once (each query holds a dozen temporaries of this length).
QUERY_BLOCK = 1 << 17


class Gaps(NamedTuple):
    """Every gap, as step ranges of the laid-out step durations and direct arithmetic sequences."""

    sorted_steps: np.ndarray     # step durations, ascending
    matrix: RankMatrix           # over each step's position in ``sorted_steps``
    span_rid: np.ndarray         # per span: request, steps [lo, hi) after its first, first gap
    span_lo: np.ndarray
    span_hi: np.ndarray
    span_gap0: np.ndarray
    seq_rid: np.ndarray          # per direct sequence: request, first value, slope, count
    seq_a: np.ndarray
    seq_s: np.ndarray
    seq_n: np.ndarray


class ItlLog:
    """Step rows per loop, decode spans per request, and direct gap sequences."""

    def __init__(self, n: int) -> None:
        self._rows = array("d")                     # (loop, t0, d0, slope, steps) per row
        self.counts: list[int] = []                 # rows per loop so far
        self.row0 = np.zeros(n, dtype=np.int64)     # row a decoding request joined its loop at
        self.last0 = np.zeros(n)                    # its previous token's time then
        self._span_i = array("q")                   # (request, loop, row a, row b) per span
        self._span_last = array("d")                # previous token's time at row a
        self._seq_i = array("q")                    # (request, count) per direct sequence
        self._seq_f = array("d")                    # (first, slope)

    def new_loop(self) -> int:
        self.counts.append(0)
        return len(self.counts) - 1

    def row(self, loop: int, t0: float, d0: float, slope: float, steps: int) -> None:
        """A step (``steps`` = 1) or run of steps of ``loop`` starting at ``t0``; step j lasts d0 + j·slope."""
        self._rows.extend((loop, t0, d0, slope, steps))
        self.counts[loop] += 1

    def pos(self, loop: int) -> int:
        """Rows ``loop`` has logged so far."""
        return self.counts[loop]

    def join(self, rids: np.ndarray, loop: int, last: np.ndarray) -> None:
        """Requests start decoding in ``loop``; their previous token came at ``last``."""
        self.row0[rids] = self.counts[loop]
        self.last0[rids] = last

    def leave(self, rids: np.ndarray, loop: int) -> None:
        """Requests stop decoding in ``loop`` (finished or preempted)."""
        b = self.counts[loop]
        row0, last0 = self.row0, self.last0
        for r in np.asarray(rids).tolist():
            self._span_i.extend((r, loop, int(row0[r]), b))
            self._span_last.append(float(last0[r]))

    def step(self, loop: int, t0: float, dt: float, skipped: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Log a one-step row; the members ``skipped`` (a prefill-only step's decodes, with their last
        token times ``last``) leave their span before it and rejoin after, so their next gap runs from
        their last token."""
        if skipped is None:
            self.row(loop, t0, dt, 0.0, 1)
            return
        ids, last = skipped
        self.leave(ids, loop)
        self.row(loop, t0, dt, 0.0, 1)
        self.join(ids, loop, last)

    def gaps(self, rids: np.ndarray, first: np.ndarray | float, slope: np.ndarray | float,
             counts: np.ndarray | int) -> None:
        """Direct gaps: request r got ``counts`` gaps first, first + slope, ..."""
        k = len(rids)
        ints = np.empty((k, 2), np.int64)
        ints[:, 0], ints[:, 1] = rids, counts
        flts = np.empty((k, 2))
        flts[:, 0], flts[:, 1] = first, slope
        self._seq_i.frombytes(ints.tobytes())
        self._seq_f.frombytes(flts.tobytes())

    @property
    def spans(self) -> list[tuple[int, int, int, int, float]]:
        """Every span as (request, loop, row a, row b, previous token's time), in the order logged."""
        i = np.frombuffer(self._span_i, dtype=np.int64).reshape(-1, 4).tolist()
        return [(*x, t) for x, t in zip(i, self._span_last.tolist())]

    def nbytes(self) -> int:
        """Bytes the log holds (its flat arrays and per-request columns)."""
        return sum(a.itemsize * len(a) for a in (self._rows, self._span_i, self._span_last, self._seq_i,
                                                    self._seq_f)) + self.row0.nbytes + self.last0.nbytes

    # ---- evaluation ---------------------------------------------------------------
    def layout(self) -> Gaps:
        """Lay every loop's steps out in one array of durations and turn spans into ranges of it."""
        rows = np.frombuffer(self._rows, dtype=np.float64).reshape(-1, 5)
        r_loop = rows[:, 0].astype(np.int64)
        off = np.concatenate([[0], np.cumsum(np.bincount(r_loop, minlength=len(self.counts)))])
        if len(r_loop) < 2 or bool((r_loop[1:] >= r_loop[:-1]).all()):
            by_loop = rows                                  # already loop 0, then loop 1, ... (one loop)
        else:
            by_loop = rows[np.argsort(r_loop, kind="stable")]
        del r_loop
        steps = by_loop[:, 4].astype(np.int64)
        start = np.concatenate([[0], np.cumsum(steps)])    # first step of each row
        total = int(start[-1])
        sorted_steps, matrix = _ranked(total, start, steps, by_loop[:, 2], by_loop[:, 3])
        del steps
        sp = np.frombuffer(self._span_i, dtype=np.int64).reshape(-1, 4)
        last = np.frombuffer(self._span_last, dtype=np.float64)
        live = sp[:, 3] > sp[:, 2]
        sp, last = sp[live], last[live]
        ga, gb = off[sp[:, 1]] + sp[:, 2], off[sp[:, 1]] + sp[:, 3]
        sq_i = np.frombuffer(self._seq_i, dtype=np.int64).reshape(-1, 2)
        sq_f = np.frombuffer(self._seq_f, dtype=np.float64).reshape(-1, 2)
        keep = sq_i[:, 1] > 0
        gap0 = by_loop[ga, 1] + by_loop[ga, 2] - last      # the row's start + its first step - previous token
        return Gaps(sorted_steps, matrix, sp[:, 0], start[ga] + 1, start[gb], gap0,
                    sq_i[keep, 0], sq_f[keep, 0], sq_f[keep, 1], sq_i[keep, 1])

    def per_request(self, n: int, pcts: tuple[float, ...] = (50.0, 99.0)) -> tuple[np.ndarray, np.ndarray]:
        """(percentiles of each request's gaps, shape (n, len(pcts)), seconds; gap counts per request).
        NaN for requests without gaps. Linear interpolation between order statistics (numpy's default)."""
        out = np.full((n, len(pcts)), np.nan)
        g = self.layout()
        n_span = np.bincount(g.span_rid, minlength=n)
        n_seq = np.bincount(g.seq_rid, minlength=n)
        counts = (np.bincount(g.span_rid, weights=g.span_hi - g.span_lo + 1, minlength=n)
                  + np.bincount(g.seq_rid, weights=g.seq_n, minlength=n)).astype(np.int64)
        one_span = (n_span == 1) & (n_seq == 0)
        one_seq = (n_seq == 1) & (n_span == 0)
        many = (counts > 0) & ~one_span & ~one_seq
        sel = np.flatnonzero(one_span[g.span_rid])
        below = np.empty(len(sel), dtype=np.int64)   # counted once for every percentile asked
        for b0 in range(0, len(sel), QUERY_BLOCK):
            below[b0:b0 + QUERY_BLOCK] = below_first(g, sel[b0:b0 + QUERY_BLOCK])
        groups = Groups(sel, below, one_seq, many)
        for k, p in enumerate(pcts):
            _fill(out[:, k], counts, p, g, groups)
        return out, counts


class Groups(NamedTuple):
    """Requests by where their gaps are: spans of requests with one span and nothing else (``span_sel``,
    with :func:`~.itl_select.below_first` of each), requests with one direct sequence only, the rest."""

    span_sel: np.ndarray
    below: np.ndarray
    one_seq: np.ndarray
    many: np.ndarray


def _ranked(total: int, start: np.ndarray, steps: np.ndarray, d0: np.ndarray,
            slope: np.ndarray) -> tuple[np.ndarray, RankMatrix]:
    """Every step's duration (d0 + j·slope for step j of its row), ascending, and the range-query
    matrix over each step's place in that order; intermediates are updated in place and dropped as
    soon as they are used (the same values as ``d0 + slope * j``)."""
    idx = np.int32 if total < 2**31 else np.int64
    j = np.arange(total, dtype=np.int64)
    j -= np.repeat(start[:-1], steps)
    dur = np.repeat(slope, steps)
    dur *= j
    del j
    dur += np.repeat(d0, steps)
    perm = np.argsort(dur, kind="stable")
    sorted_steps = dur[perm]
    del dur
    rank = np.empty(total, dtype=idx)
    rank[perm] = np.arange(total, dtype=idx)
    del perm
    return sorted_steps, RankMatrix(rank)


def _fill(col: np.ndarray, counts: np.ndarray, p: float, g: Gaps, groups: Groups) -> None:
    """Percentile ``p`` of every request's gaps into ``col``: lower and upper order statistic, then
    linear interpolation, as ``np.percentile`` does."""
    m = counts
    x = (m - 1) * p / 100.0
    f = np.floor(x).astype(np.int64)
    c = np.minimum(f + 1, m - 1)
    frac = x - f
    lo_v, hi_v = np.full(len(m), np.nan), np.full(len(m), np.nan)
    sel, one_seq, many = groups.span_sel, groups.one_seq, groups.many
    for b0 in range(0, len(sel), QUERY_BLOCK):     # a block at a time: the queries' temporaries stay small
        part, below = sel[b0:b0 + QUERY_BLOCK], groups.below[b0:b0 + QUERY_BLOCK]
        rid = g.span_rid[part]
        for kk, dst in ((f, lo_v), (c, hi_v)):
            dst[rid] = kth_simple(g, part, kk[rid], below)
    sel = one_seq[g.seq_rid]
    rid = g.seq_rid[sel]
    a, s, cnt = g.seq_a[sel], g.seq_s[sel], g.seq_n[sel]
    for kk, dst in ((f, lo_v), (c, hi_v)):
        j = np.where(s >= 0, kk[rid], cnt - 1 - kk[rid])
        dst[rid] = a + s * j
    who = np.flatnonzero(many)
    if len(who):
        vals = kth_general(g, who, np.concatenate([f[who], c[who]]))
        lo_v[who], hi_v[who] = vals[:len(who)], vals[len(who):]
    has = m > 0
    col[has] = (lo_v + (hi_v - lo_v) * frac)[has]
