"""Per-request inter-token latencies, exact, from a compact record of the engine's steps.

Every scheduler loop logs its steps (start, first step's duration, slope, steps: a decode run's
durations grow linearly). A request decoding in a loop from row a to row b (its *interval*) got
one token delivery per step of those rows; the first gap is measured from its previous token.
Gaps outside intervals (the token a recompute prefill ends with; static batches) are logged
directly as arithmetic sequences. Expanding all of it gives every gap of every request; a
request's p50/p99 are then exact. A step that delivers several tokens at once (speculative
decoding) counts as one gap, as a streaming client sees it.
"""
from __future__ import annotations

import numpy as np

#: Beyond this many requests the per-request percentiles are not computed (NaN, with a note).
EXACT_MAX_REQUESTS = 200_000
_CHUNK_TOKENS = 4_000_000


class ItlLog:
    """Step rows per loop, decode intervals per request, and direct gap sequences."""

    def __init__(self, n: int) -> None:
        self.rows: list[tuple[int, float, float, float, int]] = []   # (loop, t0, d0, slope, steps)
        self.counts: list[int] = []                                   # rows per loop so far
        self.row0 = np.zeros(n, dtype=np.int64)     # row a decoding request joined its loop at
        self.last0 = np.zeros(n)                    # its previous token's time then
        self.spans: list[tuple[np.ndarray, int, np.ndarray, int, np.ndarray]] = []
        self.seqs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def new_loop(self) -> int:
        self.counts.append(0)
        return len(self.counts) - 1

    def row(self, loop: int, t0: float, d0: float, slope: float, steps: int) -> None:
        """A step (``steps`` = 1) or run of steps of ``loop`` starting at ``t0``; step j lasts d0 + j·slope."""
        self.rows.append((loop, t0, d0, slope, steps))
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
        self.spans.append((rids, loop, self.row0[rids], self.counts[loop], self.last0[rids]))

    def gaps(self, rids: np.ndarray, first: np.ndarray | float, slope: np.ndarray | float,
             counts: np.ndarray | int) -> None:
        """Direct gaps: request r got ``counts`` gaps first, first + slope, ..."""
        k = len(rids)
        self.seqs.append((np.asarray(rids, dtype=np.int64), np.broadcast_to(np.asarray(first, float), k),
                          np.broadcast_to(np.asarray(slope, float), k), np.broadcast_to(np.asarray(counts, np.int64), k)))

    # ---- evaluation ---------------------------------------------------------------
    def _sequences(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every gap as arithmetic sequences: (request, first value, slope, count)."""
        rows = np.array(self.rows, dtype=np.float64).reshape(-1, 5)
        r_loop = rows[:, 0].astype(np.int64)
        t0, d0, slope, steps = rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4].astype(np.int64)
        order = np.argsort(r_loop, kind="stable")          # rows of loop 0, then loop 1, ...
        sizes = np.bincount(r_loop, minlength=len(self.counts))
        off = np.concatenate([[0], np.cumsum(sizes)])
        cat = np.concatenate
        if self.spans:
            rid = cat([x[0] for x in self.spans])
            loop = cat([np.full(len(x[0]), x[1], np.int64) for x in self.spans])
            a = cat([x[2] for x in self.spans])
            b = cat([np.full(len(x[0]), x[3], np.int64) for x in self.spans])
            last = cat([x[4] for x in self.spans])
            live = b > a
            rid, loop, a, b, last = rid[live], loop[live], a[live], b[live], last[live]
        else:
            rid = loop = a = b = np.zeros(0, np.int64)
            last = np.zeros(0)
        n_rows = b - a
        cs = np.concatenate([[0], np.cumsum(n_rows)])
        pos = np.repeat(off[loop] + a - cs[:-1], n_rows) + np.arange(int(cs[-1]), dtype=np.int64)
        idx = order[pos]
        first = np.zeros(len(idx), dtype=bool)
        first[cs[:-1]] = True
        seq_a = d0[idx] + np.where(first, slope[idx], 0.0)
        seq_n = steps[idx] - first
        f_idx = idx[first]
        gap0 = t0[f_idx] + d0[f_idx] - last
        direct = [x for x in self.seqs if len(x[0])]
        s_rid = cat([x[0] for x in direct]) if direct else np.zeros(0, np.int64)
        s_a = cat([x[1] for x in direct]) if direct else np.zeros(0)
        s_s = cat([x[2] for x in direct]) if direct else np.zeros(0)
        s_n = cat([x[3] for x in direct]) if direct else np.zeros(0, np.int64)
        out_rid = cat([np.repeat(rid, n_rows), rid, s_rid])
        out_a = cat([seq_a, gap0, s_a])
        out_s = cat([slope[idx], np.zeros(len(gap0)), s_s])
        out_n = cat([seq_n, np.ones(len(gap0), np.int64), s_n])
        keep = out_n > 0
        return out_rid[keep], out_a[keep], out_s[keep], out_n[keep]

    def per_request(self, n: int, pcts: tuple[float, ...] = (50.0, 99.0)) -> tuple[np.ndarray, np.ndarray]:
        """(percentiles of each request's gaps, shape (n, len(pcts)), seconds; gap counts per request).
        NaN for requests without gaps. Linear interpolation between order statistics (numpy's default)."""
        out = np.full((n, len(pcts)), np.nan)
        rid, a, s, cnt = self._sequences()
        counts = np.bincount(rid, weights=cnt, minlength=n).astype(np.int64)
        if not len(rid):
            return out, counts
        order = np.argsort(rid, kind="stable")
        rid, a, s, cnt = rid[order], a[order], s[order], cnt[order]
        tok_cum = np.cumsum(counts)
        lo = 0
        while lo < n:
            base = tok_cum[lo - 1] if lo else 0
            hi = max(lo + 1, int(np.searchsorted(tok_cum, base + _CHUNK_TOKENS, side="right")))
            hi = min(hi, n)
            i0, i1 = np.searchsorted(rid, [lo, hi])
            self._chunk(rid[i0:i1], a[i0:i1], s[i0:i1], cnt[i0:i1], lo, hi, counts, pcts, out)
            lo = hi
        return out, counts

    @staticmethod
    def _chunk(rid: np.ndarray, a: np.ndarray, s: np.ndarray, cnt: np.ndarray, lo: int, hi: int,
               counts: np.ndarray, pcts: tuple[float, ...], out: np.ndarray) -> None:
        if not len(rid):
            return
        total = int(cnt.sum())
        starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])
        j = np.arange(total, dtype=np.int64) - np.repeat(starts, cnt)
        vals = np.repeat(a, cnt) + np.repeat(s, cnt) * j
        who = np.repeat(rid, cnt)
        vals = vals[np.lexsort((vals, who))]
        m = counts[lo:hi]
        first = np.concatenate([[0], np.cumsum(m)[:-1]])
        has = m > 0
        for k, p in enumerate(pcts):
            x = (m - 1) * p / 100.0
            f = np.floor(x).astype(np.int64)
            c = np.minimum(f + 1, m - 1)
            fi, ci = (first + f)[has], (first + c)[has]
            frac = (x - f)[has]
            out[lo:hi, k][has] = vals[fi] + (vals[ci] - vals[fi]) * frac
