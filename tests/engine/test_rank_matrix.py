"""Range order statistics against sorting each range."""
from __future__ import annotations

import numpy as np

from simulator.engine.rank_matrix import RankMatrix, popcount, popcount_bytes


def test_kth_and_count_less_equal_sorting_each_range():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 1000, size=700)
    m = RankMatrix(x)
    lo = rng.integers(0, 700, size=500)
    hi = np.minimum(lo + rng.integers(1, 200, size=500), 700)
    k = (rng.random(500) * (hi - lo)).astype(np.int64)
    t = rng.integers(-5, 1100, size=500)
    want_k = [np.sort(x[a:b])[j] for a, b, j in zip(lo, hi, k)]
    want_c = [int((x[a:b] < v).sum()) for a, b, v in zip(lo, hi, t)]
    assert m.kth(lo, hi, k).tolist() == want_k
    assert m.count_less(lo, hi, t).tolist() == want_c


def test_empty_ranges_count_nothing():
    m = RankMatrix(np.array([3, 1, 2]))
    assert m.count_less(np.array([1, 0]), np.array([1, 0]), np.array([5, 0])).tolist() == [0, 0]


def test_ranges_on_word_boundaries_of_the_packed_planes():
    rng = np.random.default_rng(11)
    x = rng.integers(0, 2**20, size=5000)
    m = RankMatrix(x)
    edges = np.array([0, 1, 63, 64, 65, 127, 128, 129, 4095, 4096, 4999])
    lo, hi = np.meshgrid(edges, np.append(edges, 5000))
    lo, hi = lo.ravel(), hi.ravel()
    keep = hi > lo
    lo, hi = lo[keep], hi[keep]
    k = (hi - lo) // 2
    assert m.kth(lo, hi, k).tolist() == [int(np.sort(x[a:b])[j]) for a, b, j in zip(lo, hi, k)]
    t = x[lo]
    assert m.count_less(lo, hi, t).tolist() == [int((x[a:b] < v).sum()) for a, b, v in zip(lo, hi, t)]


def test_popcount_by_bytes_counts_every_set_bit():
    rng = np.random.default_rng(5)
    w = rng.integers(0, 2**63, size=1000, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, 1000).astype(np.uint64)
    want = [bin(int(v)).count("1") for v in w]
    assert popcount_bytes(w).tolist() == want
    assert popcount(w).tolist() == want
