"""Sharded runs in this process (``executor="local"``): exact for routers without state, within the
documented bound for least outstanding."""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.engine.simulate import simulate
from simulator.fleet.run import simulate_sharded
from simulator.metrics.summary import summarize

from ..engine.conftest import make_scenario, uniform_workload
from .conftest import assert_identical, latency_errors

#: The documented bound (docs/guide/features.md, sharded runs) on the relative error of the sharded run at
#: the default synchronisation window (0.05 s), set from six seeds of this scenario in
#: docs/benchmarks/fleet_error.json (largest seen: 2.4%, 10.0%, 0.08%, 0.56%).
LEAST_OUTSTANDING_TOLERANCE = {"ttft_mean": 0.03, "ttft_p99": 0.12, "e2e_mean": 0.005, "e2e_p99": 0.02}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({
    **uniform_workload(120.0, 300, 2000, 300, rate_low=2.0),
    "deployment.kv_cache.num_blocks": st.integers(100, 3000),
    "deployment.kv_cache.prefix_caching": st.booleans(),
    "deployment.replicas": st.integers(1, 6),
    "deployment.router": st.sampled_from(["round_robin", "random"]),
    "seed": st.integers(0, 10_000),
}), st.integers(1, 4))
def test_stateless_routers_shard_exactly(over: dict[str, Any], workers: int) -> None:
    s = make_scenario(**over)
    assert_identical(simulate(s), simulate_sharded(s, "local", workers))


def test_sharded_summary_equals_single_process_summary() -> None:
    s = make_scenario(**{"deployment.replicas": 4, "workload.requests": 400, "workload.arrival.rate": 40.0})
    a, b = summarize(simulate(s)), summarize(simulate_sharded(s, "local", 3))
    for x in (a, b):
        x.pop("simulation_wall_s")
        x.pop("notes")
    assert a == b


@pytest.mark.parametrize("seed", [1, 2])
def test_least_outstanding_within_the_documented_bound(seed: int) -> None:
    s = make_scenario(**{"deployment.replicas": 8, "workload.requests": 2000, "workload.arrival.rate": 60.0,
                         "deployment.router": "least_outstanding", "seed": seed,
                         "workload.prompt_tokens": {"dist": "uniform", "low": 64, "high": 2048},
                         "workload.output_tokens": {"dist": "uniform", "low": 8, "high": 512}})
    a, b = simulate(s), simulate_sharded(s, "local", 2)
    assert (b.requests.status == a.requests.status).all()          # every request served either way
    errors = latency_errors(a, b)
    for key, tol in LEAST_OUTSTANDING_TOLERANCE.items():
        assert abs(errors[key]) <= tol, (key, errors)
