"""ITL statistics a block at a time against the flat computation: numpy's pairwise sum rebuilt from its
leaves, weighted percentiles from exact cumulative weights, and the cases left to the flat path."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.metrics import itl_stats
from simulator.metrics.itl_stats import itl_samples, pairwise
from simulator.metrics.summary import stats


@pytest.mark.parametrize("block", [8, 128, 136, 1000, 4096])
def test_pairwise_from_leaves_is_numpys_sum_to_the_bit(block: int):
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(0, 20_000))
        a = rng.standard_normal(n) * rng.exponential(1.0, n) ** 3
        got = pairwise(n, lambda lo, hi: a[lo:hi].sum(), block)
        assert got == a.sum(), n


def _log(rows: int, seed: int, distinct: int | None = None) -> dict[str, np.ndarray]:
    """A synthetic step log: runs of 1-40 steps, 0-64 sequences, durations from ``distinct`` values
    (heavy ties) or continuous."""
    rng = np.random.default_rng(seed)
    if distinct:
        pool = rng.uniform(0.005, 0.05, distinct)
        d0, d1 = rng.choice(pool, rows), rng.choice(pool, rows)
    else:
        d0 = rng.uniform(0.005, 0.05, rows)
        d1 = d0 + rng.uniform(0.0, 0.002, rows)
    return {"steps": rng.integers(1, 40, rows), "dt_first": d0, "dt_last": d1,
            "decode_seqs": rng.integers(0, 65, rows)}


@pytest.mark.parametrize("distinct", [None, 3, 50])
@pytest.mark.parametrize("sizes", [(1 << 17, 1 << 16, 1 << 18), (128, 4, 16), (64, 2, 1)])
def test_block_statistics_equal_the_flat_ones(distinct: int | None, sizes: tuple[int, int, int],
                                              monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(itl_stats, "BLOCK", sizes[0])
    monkeypatch.setattr(itl_stats, "BUCKETS", sizes[1])
    monkeypatch.setattr(itl_stats, "GATHER", sizes[2])
    pcts = (1.0, 50.0, 90.0, 99.0, 99.9)
    for seed in range(4):
        steps = _log(3000, seed, distinct)
        want = stats(*itl_samples(steps), pcts)
        got = itl_stats.itl_stats(steps, pcts)
        assert got is not None
        assert list(got) == list(want.values())


def test_where_the_block_path_does_not_apply_it_says_so():
    steps = _log(100, 1)
    nan = {**steps, "dt_first": np.where(np.arange(100) == 7, np.nan, steps["dt_first"])}
    zero = {**steps, "dt_first": np.where(np.arange(100) == 3, 0.0, steps["dt_first"])}
    huge = {**steps, "decode_seqs": np.full(100, 2**50, dtype=np.int64)}
    for case in (nan, zero, huge):
        assert itl_stats.itl_stats(case, (99.0,)) is None


def test_no_weighted_sample_gives_no_statistic_as_the_flat_path_does():
    steps = _log(100, 1)
    idle = {**steps, "decode_seqs": np.zeros(100, dtype=np.int64)}
    empty = {k: v[:0] for k, v in steps.items()}
    for case in (idle, empty):
        want = stats(*itl_samples(case), (99.0,))
        assert set(want.values()) == {None}
        assert itl_stats.itl_stats(case, (99.0,)) == tuple(want.values())
