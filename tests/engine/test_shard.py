"""A shard fed every request equals the single-process run; arrivals land on its clock values."""
from __future__ import annotations

import numpy as np

from simulator.engine.shard import ShardSim, arrival_clock
from simulator.engine.simulate import simulate
from simulator.workload.generate import generate_plan

from .conftest import make_scenario


def test_arrival_clock_is_the_single_process_arrival_column() -> None:
    s = make_scenario(**{"workload.requests": 500, "workload.arrival.rate": 37.0})
    table = generate_plan(s.workload, s.seed).table
    clock = arrival_clock(np.asarray(table.arrival_s))
    assert np.array_equal(clock, simulate(s).requests.arrival)      # bit for bit, rounding included
    assert np.allclose(clock, table.arrival_s, rtol=1e-12, atol=0)


def test_arrival_clock_keeps_simultaneous_arrivals_together() -> None:
    t = np.array([0.0, 0.0, 0.5, 0.5, 0.25, 1.0])                   # a late entry waits for nobody
    assert arrival_clock(t).tolist() == [0.0, 0.0, 0.5, 0.5, 0.5, 1.0]


def test_one_shard_with_every_replica_is_the_single_process_run() -> None:
    s = make_scenario(**{"deployment.replicas": 3, "workload.requests": 300, "workload.arrival.rate": 30.0})
    ref = simulate(s).requests
    n = ref.n
    sim = ShardSim(s, [0, 1, 2])
    table = generate_plan(s.workload, s.seed).table
    clock = arrival_clock(np.asarray(table.arrival_s))
    half = n // 2                                                    # in two pushes, a run in between
    sim.push(np.arange(half), np.arange(half) % 3, clock[:half])
    counts = sim.advance(float(clock[half]))
    assert set(counts) == {0, 1, 2} and all(c >= 0 for c in counts.values())
    sim.push(np.arange(half, n), np.arange(half, n) % 3, clock[half:], last=float(clock[-1]))
    part = sim.finish()
    assert np.array_equal(part.rids, np.arange(n))
    for name, col in part.columns.items():
        assert np.array_equal(col, getattr(ref, name), equal_nan=col.dtype.kind == "f"), name
