"""The inter-token latency statistics of a step log, exact, in memory bounded by a block of rows.

A step-log row of n decode steps stands for :data:`ITL_POINTS` samples of its step durations, evenly
spaced from the first step's to the last's, each weighted by seqs·n/ITL_POINTS tokens (a single step:
its duration, weighted by its sequences; :func:`itl_samples`). Laid out flat that is 8 samples per row
(13 million at 1,000,000 chat requests: 105 MB per float column, several times that to sort them).
Here the samples are made a block of rows at a time, and every statistic comes out as the flat
computation (:func:`~.summary.stats` with weights) gives it, to the bit:

- The weights are multiples of 1/8 (token counts over 8), so any sum of them below 2**49 is exact,
  in any order. The weighted percentile (the first sample, in sorted order, whose cumulative weight
  over the total reaches p) is therefore the smallest value v with fl(W(<= v) / total) >= p, whatever
  the order of ties: found with histograms over the samples' float bits, refined until the bucket
  holding the answer has few enough distinct samples to gather and sort (:data:`GATHER`).
- Mean and variance are numpy's pairwise sums of sample times weight (``np.average``). The leaves of
  numpy's pairwise recursion (at most :data:`BLOCK` samples, whole rows) are summed one at a time
  with ``ndarray.sum`` and added along the same tree, which is the same sum to the bit
  (``tests/metrics/test_itl_stats.py`` checks this against ``ndarray.sum`` on random arrays).

Where those conditions fail (a NaN or non-positive sample, weights summing to 2**49 or more)
:func:`itl_stats` returns None and the caller takes the flat arrays.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

ITL_POINTS = 8    # representative step durations sampled per decode run
BLOCK = 1 << 17   # most samples per pairwise leaf: 16,384 rows, 1 MB per float column
BUCKETS = 1 << 16  # histogram buckets per refinement round
GATHER = 1 << 18  # most samples a bucket may hold to be gathered and sorted instead of refined
EXACT = 2.0 ** 49  # sums of multiples of 1/8 below this are exact in float64


def itl_samples(steps: dict[str, np.ndarray], lo: int = 0, hi: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inter-token latencies of decode tokens (seconds) with weights (tokens), from rows ``lo:hi`` of
    the step log (all rows by default), :data:`ITL_POINTS` per row, flat."""
    n = steps["steps"][lo:hi].astype(float)
    d0, d1, seqs = steps["dt_first"][lo:hi], steps["dt_last"][lo:hi], steps["decode_seqs"][lo:hi].astype(float)
    pts = np.linspace(0.0, 1.0, ITL_POINTS)
    multi = n > 1
    vals = np.where(multi[:, None], d0[:, None] + (d1 - d0)[:, None] * pts[None, :], d0[:, None])
    wts = np.where(multi[:, None], (seqs * n / ITL_POINTS)[:, None], np.where(pts[None, :] == 0, seqs[:, None], 0.0))
    return vals.ravel(), wts.ravel()


def pairwise(n: int, leaf: Callable[[int, int], float], block: int) -> float:
    """numpy's pairwise sum of an ``n``-long float64 array whose pieces ``[lo, hi)`` of at most
    ``block`` values ``leaf`` sums (``ndarray.sum`` of the piece): the same tree, the same result.
    numpy sums up to 128 values (``PW_BLOCKSIZE``) in one loop, so a smaller ``block`` counts as 128."""
    block = max(block, 128)

    def node(lo: int, m: int) -> float:
        if m <= block:
            return leaf(lo, lo + m)
        half = m // 2
        half -= half % 8
        return node(lo, half) + node(lo + half, m - half)
    return 0.0 + node(0, n) if n else 0.0


class _Scan:
    """Total weight, range of the weighted samples and whether any is NaN (one pass's findings)."""

    def __init__(self) -> None:
        self.total, self.count, self.nan = 0.0, 0, False
        self.vmin, self.vmax = np.inf, -np.inf


def itl_stats(steps: dict[str, np.ndarray], pcts: tuple[float, ...]) -> tuple[float | None, ...] | None:
    """(mean, median, std, min, max, *percentiles ``pcts``) of the weighted ITL samples of ``steps``,
    as :func:`~.summary.stats` gives them from the flat arrays (all None without weighted samples);
    None where this path does not apply."""
    rows = len(steps["steps"])
    n, block = rows * ITL_POINTS, max(128, BLOCK - BLOCK % ITL_POINTS)
    sc = _Scan()

    def scan(lo: int, hi: int) -> float:
        v, w = itl_samples(steps, lo // ITL_POINTS, hi // ITL_POINTS)
        pos = w > 0
        sc.nan |= bool(np.isnan(v).any())
        sc.total += float(w.sum())
        sc.count += int(pos.sum())
        if pos.any():
            sc.vmin, sc.vmax = min(sc.vmin, float(v[pos].min())), max(sc.vmax, float(v[pos].max()))
        return (v * w).sum()

    s1 = pairwise(n, scan, block)
    if not n or (not sc.nan and sc.total == 0):
        return (None,) * (5 + len(pcts))                # no sample, or none with weight: as stats() says
    if sc.nan or not sc.total < EXACT or not sc.vmin > 0:
        return None
    mean = float(s1 / sc.total)

    def spread(lo: int, hi: int) -> float:
        v, w = itl_samples(steps, lo // ITL_POINTS, hi // ITL_POINTS)
        return ((v - mean) ** 2 * w).sum()

    std = float(np.sqrt(pairwise(n, spread, block) / sc.total))
    qs = [p / 100.0 for p in (50, *pcts)]
    ps = _Quantiles(steps, sc.total, block).find(qs, _key(sc.vmin), _key(sc.vmax) + 1, sc.count)
    return (mean, ps[0], std, sc.vmin, sc.vmax, *ps[1:])


def _key(v: float) -> int:
    """A positive float's bits as an integer (ordered as the floats are)."""
    return int(np.float64(v).view(np.int64))


class _Quantiles:
    """Weighted quantiles by refining key ranges: per range, a histogram or the gathered samples."""

    def __init__(self, steps: dict[str, np.ndarray], total: float, block: int) -> None:
        self.steps, self.total = steps, total
        self.rows_per_block = block // ITL_POINTS

    def _blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Keys and weights of the weighted samples, a block of rows at a time."""
        rows = len(self.steps["steps"])
        for lo in range(0, rows, self.rows_per_block):
            v, w = itl_samples(self.steps, lo, lo + self.rows_per_block)
            pos = w > 0
            yield v[pos].view(np.int64), w[pos]

    def find(self, qs: list[float], lo: int, hi: int, count: int) -> list[float]:
        """The value of each quantile ``qs``, from the key range [lo, hi) holding ``count`` samples."""
        # open ranges: (lo, hi) -> [base weight below lo, samples in range, indices of qs]
        open_: dict[tuple[int, int], list] = {(lo, hi): [0.0, count, list(range(len(qs)))]}
        out = [0.0] * len(qs)
        while open_:
            hists, gathered = self._pass(open_)
            nxt: dict[tuple[int, int], list] = {}
            for (a, b), (base, cnt, who) in open_.items():
                if (a, b) in gathered:
                    keys, w = gathered[(a, b)]
                    for i in who:
                        out[i] = self._pick(keys, w, base, qs[i])
                    continue
                shift, wb, cb = hists[(a, b)]
                cum = base + np.cumsum(wb)
                for i in who:
                    j = min(int(np.searchsorted(cum / self.total, qs[i], side="left")), len(cum) - 1)
                    ra = a + (j << shift)
                    if shift == 0:
                        out[i] = float(np.int64(ra).view(np.float64))
                        continue
                    rng = (ra, min(b, ra + (1 << shift)))
                    nxt.setdefault(rng, [float(cum[j] - wb[j]), int(cb[j]), []])[2].append(i)
            open_ = nxt
        return out

    def _pass(self, open_: dict[tuple[int, int], list]) -> tuple[dict, dict]:
        """One pass over the samples: a histogram of each wide range, the samples of each narrow one."""
        hists: dict[tuple[int, int], tuple[int, np.ndarray, np.ndarray]] = {}
        parts: dict[tuple[int, int], _Gather] = {}
        for (a, b), (_, cnt, _) in open_.items():
            if cnt <= GATHER or b - a <= BUCKETS:
                parts[(a, b)] = _Gather()
            else:
                shift = max(0, (b - a - 1).bit_length() - (BUCKETS - 1).bit_length())
                nb = ((b - a - 1) >> shift) + 1
                hists[(a, b)] = (shift, np.zeros(nb), np.zeros(nb, dtype=np.int64))
        for k, w in self._blocks():
            for (a, b), (shift, wb, cb) in hists.items():
                sel = (k >= a) & (k < b)
                idx = (k[sel] - a) >> shift
                wb += np.bincount(idx, weights=w[sel], minlength=len(wb))
                cb += np.bincount(idx, minlength=len(cb))
            for (a, b), got in parts.items():
                sel = (k >= a) & (k < b)
                got.add(k[sel], w[sel])
        return hists, {rng: got.merged() for rng, got in parts.items()}

    def _pick(self, keys: np.ndarray, w: np.ndarray, base: float, q: float) -> float:
        """The smallest key whose cumulative weight (from ``base``) over the total reaches ``q``."""
        cum = base + np.cumsum(w)
        j = min(int(np.searchsorted(cum / self.total, q, side="left")), len(cum) - 1)
        return float(keys[j:j + 1].view(np.float64)[0])


class _Gather:
    """Samples of one key range, merged into distinct keys with summed weights as they pile up."""

    def __init__(self) -> None:
        self.keys, self.w = [np.zeros(0, np.int64)], [np.zeros(0)]
        self.pending, self.done = 0, 0

    def add(self, keys: np.ndarray, w: np.ndarray) -> None:
        self.keys.append(keys)
        self.w.append(w)
        self.pending += len(keys)
        if self.pending > max(GATHER, 2 * self.done):
            self.merged()

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct keys so far, ascending, with their summed weights."""
        k, w = _merge(np.concatenate(self.keys), np.concatenate(self.w))
        self.keys, self.w, self.pending, self.done = [k], [w], 0, len(k)
        return k, w


def _merge(keys: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys, ascending, with their summed weights."""
    uk, inv = np.unique(keys, return_inverse=True)
    return uk, np.bincount(inv, weights=w, minlength=len(uk))
