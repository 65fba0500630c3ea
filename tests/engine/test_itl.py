"""Per-request inter-token latency percentiles: counts, maxima against the engine's own running maximum,
a lone request against the step-time model, and static batches against their arithmetic sequence."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.engine import itl
from simulator.engine.itl import ItlLog
from simulator.engine.simulate import build_step_model, simulate
from simulator.engine.state import DONE
from simulator.metrics.summary import per_request
from simulator.perf.step import BatchShape

from .conftest import make_scenario


def _gap_counts(res) -> np.ndarray:
    return res.itl_logs[0].per_request(res.requests.n)[1]


@pytest.mark.parametrize("over", [
    {},
    {"deployment.kv_cache.num_blocks": 300, "workload.arrival": {"process": "offline"}, "workload.requests": 60,
     "workload.output_tokens.value": 200},
    {"deployment.kv_cache.num_blocks": 300, "workload.arrival": {"process": "offline"}, "workload.requests": 60,
     "workload.output_tokens.value": 200, "deployment.kv_cache.preemption": "swap"},
    {"deployment.pp": 2, "workload.arrival.rate": 30.0},
    {"workload.output_tokens": {"dist": "uniform", "low": 1, "high": 300}, "deployment.replicas": 2},
], ids=["plain", "recompute", "swap", "pp2", "mixed-lengths"])
def test_every_gap_is_counted_and_the_largest_is_max_itl(over):
    res = simulate(make_scenario(**over))
    r = res.requests
    assert (r.status == DONE).all()
    assert (_gap_counts(res) == r.output - 1).all()
    df = per_request(res)
    multi = r.output > 2
    # the exact p99 lies below the engine's own running maximum and close to it
    assert (df["itl_p99_s"][multi] <= df["max_itl_s"][multi] + 1e-12).all()
    log = res.itl_logs[0]
    full, _ = log.per_request(r.n, (100.0,))
    assert np.allclose(full[r.output > 1, 0], r.max_itl[r.output > 1], rtol=1e-9)
    if "preemption" in str(over) or "num_blocks" in over:
        assert r.preemptions.sum() > 0


def test_lone_request_gaps_are_decode_step_times():
    s = make_scenario(**{"workload.requests": 3, "workload.arrival": {"process": "constant", "rate": 0.2},
                         "workload.prompt_tokens.value": 1000, "workload.output_tokens.value": 101})
    df = per_request(simulate(s))
    sm = build_step_model(s)
    steps = np.array([sm.price(BatchShape.decode(1, 1000 + j))[0] for j in range(100)])
    assert df["itl_p50_s"].to_numpy() == pytest.approx(np.percentile(steps, 50), rel=2e-3)
    assert df["itl_p99_s"].to_numpy() == pytest.approx(np.percentile(steps, 99), rel=2e-3)


def test_static_batch_gaps_are_its_step_sequence():
    s = make_scenario(**{"deployment.batching.policy": "static", "deployment.batching.max_batch_size": 4,
                         "workload.arrival": {"process": "offline"}, "workload.requests": 4,
                         "workload.output_tokens": {"dist": "uniform", "low": 10, "high": 60}})
    res = simulate(s)
    r = res.requests
    assert (_gap_counts(res) == r.output - 1).all()
    full, _ = res.itl_logs[0].per_request(r.n, (0.0, 100.0))
    assert np.allclose(full[:, 1], r.max_itl)


def test_percentiles_by_hand():
    log = ItlLog(2)
    loop = log.new_loop()
    log.join(np.array([0, 1]), loop, np.array([0.0, 0.5]))
    log.row(loop, 1.0, 0.1, 0.01, 5)         # steps end at 1.1, 1.21, 1.33, 1.46, 1.60
    log.leave(np.array([0]), loop)
    log.row(loop, 1.6, 0.2, 0.0, 1)
    log.leave(np.array([1]), loop)
    log.gaps(np.array([1]), 3.0, 0.0, 1)
    pct, counts = log.per_request(2, (0.0, 50.0, 100.0))
    g0 = np.array([1.1, 0.11, 0.12, 0.13, 0.14])          # first gap from its last token at 0.0
    g1 = np.array([0.6, 0.11, 0.12, 0.13, 0.14, 0.2, 3.0])
    assert list(counts) == [5, 7]
    assert pct[0] == pytest.approx([g0.min(), np.median(g0), g0.max()])
    assert pct[1] == pytest.approx([g1.min(), np.median(g1), g1.max()])


def brute_force(log: ItlLog, n: int, pcts: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Every gap of every request written out one by one from the raw log, then ``np.percentile``."""
    rows = np.frombuffer(log._rows).reshape(-1, 5)
    by_loop: dict[int, list] = {}
    for loop, t0, d0, slope, steps in rows.tolist():
        by_loop.setdefault(int(loop), []).append((t0, d0, slope, int(steps)))
    gaps: list[list[float]] = [[] for _ in range(n)]
    for rid, loop, a, b, last in log.spans:
        for i, (t0, d0, slope, steps) in enumerate(by_loop.get(loop, [])[a:b]):
            for j in range(steps):
                gaps[rid].append(t0 + d0 - last if i == 0 and j == 0 else d0 + slope * j)
    ints = np.frombuffer(log._seq_i, dtype=np.int64).reshape(-1, 2)
    flts = np.frombuffer(log._seq_f).reshape(-1, 2)
    for (rid, cnt), (first, slope) in zip(ints.tolist(), flts.tolist()):
        gaps[rid].extend(first + slope * j for j in range(cnt))
    out = np.full((n, len(pcts)), np.nan)
    for r, g in enumerate(gaps):
        if g:
            out[r] = np.percentile(g, pcts)
    return out, np.array([len(g) for g in gaps])


@pytest.mark.parametrize("over", [
    {"workload.requests": 300, "workload.arrival.rate": 12.0},
    {"deployment.kv_cache.num_blocks": 300, "workload.arrival": {"process": "offline"}, "workload.requests": 60,
     "workload.output_tokens.value": 200},
    {"deployment.pp": 2, "workload.arrival.rate": 30.0},
    {"deployment.batching.policy": "static", "deployment.batching.max_batch_size": 4,
     "workload.arrival": {"process": "offline"}, "workload.requests": 12,
     "workload.output_tokens": {"dist": "uniform", "low": 1, "high": 60}},
], ids=["chat", "recompute", "pp2", "static"])
def test_range_queries_equal_every_gap_written_out(over):
    """Range order statistics (one span, several spans, direct sequences) against the gaps one by one."""
    res = simulate(make_scenario(**over))
    log, n = res.itl_logs[0], res.requests.n
    pcts = (0.0, 10.0, 50.0, 90.0, 99.0, 100.0)
    got, counts = log.per_request(n, pcts)
    want, want_counts = brute_force(log, n, pcts)
    assert (counts == want_counts).all()
    assert np.allclose(got, want, rtol=1e-12, atol=0.0, equal_nan=True)


def test_hand_built_log_with_ties_and_several_spans():
    log = ItlLog(3)
    loop = log.new_loop()
    log.join(np.array([0, 1, 2]), loop, np.array([0.0, 0.9, 0.95]))
    log.row(loop, 1.0, 0.1, 0.0, 4)           # 0.1 four times: ties with the first gap of request 1
    log.leave(np.array([1]), loop)
    log.row(loop, 1.4, 0.3, -0.05, 3)
    log.leave(np.array([0]), loop)
    log.join(np.array([1]), loop, np.array([2.0]))
    log.row(loop, 2.0, 0.2, 0.0, 2)
    log.leave(np.array([1, 2]), loop)
    log.gaps(np.array([2, 2]), np.array([0.5, 0.05]), np.array([0.1, 0.0]), np.array([3, 2]))
    pcts = tuple(float(p) for p in range(0, 101, 5))
    got, counts = log.per_request(3, pcts)
    want, want_counts = brute_force(log, 3, pcts)
    assert list(counts) == list(want_counts) == [7, 6, 14]
    assert np.allclose(got, want, rtol=1e-12, atol=0.0)


def test_no_cliff_at_any_request_count():
    """The per-request percentiles are computed however many requests there are (no cut-off, no note)."""
    res = simulate(make_scenario(**{"workload.requests": 20}))
    assert not np.isnan(per_request(res)["itl_p50_s"]).any()
    assert not any("ITL" in n for n in res.notes)


@pytest.mark.parametrize("over", [{"workload.arrival.rate": 30.0}, {"deployment.pp": 2, "workload.arrival.rate": 30.0}],
                         ids=["one loop", "pp2"])
def test_queries_a_block_at_a_time_give_the_same_percentiles(over, monkeypatch: pytest.MonkeyPatch):
    """Spans queried in blocks of 7 against one block: the same values to the bit."""
    res = simulate(make_scenario(**over))
    log, n = res.itl_logs[0], res.requests.n
    whole, counts = log.per_request(n, (10.0, 50.0, 99.0))
    monkeypatch.setattr(itl, "QUERY_BLOCK", 7)
    blocks, counts7 = log.per_request(n, (10.0, 50.0, 99.0))
    assert np.array_equal(whole, blocks, equal_nan=True) and np.array_equal(counts, counts7)
