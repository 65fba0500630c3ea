"""Range order statistics against sorting each range."""
from __future__ import annotations

import numpy as np

from simulator.engine.rank_matrix import RankMatrix


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
