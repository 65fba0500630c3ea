"""Which scenarios shard, how replicas split, and the one-line errors for the rest."""
from __future__ import annotations

import pytest

from simulator.errors import InputError
from simulator.fleet.plan import DEFAULT_WINDOW_S, plan_shards

from ..engine.conftest import make_scenario


def test_replicas_split_into_contiguous_blocks_covering_each_once() -> None:
    p = plan_shards(make_scenario(**{"deployment.replicas": 7}), "ray", 3, None)
    assert p.shards == ((0, 1), (2, 3, 4), (5, 6))
    assert p.window_s is None                                   # round robin: routed before the run
    assert len(plan_shards(make_scenario(**{"deployment.replicas": 2}), "ray", 5, None).shards) == 2


def test_least_outstanding_gets_a_window() -> None:
    s = make_scenario(**{"deployment.replicas": 4, "deployment.router": "least_outstanding"})
    assert plan_shards(s, "ray", 2, None).window_s == DEFAULT_WINDOW_S
    assert plan_shards(s, "ray", 2, 0.2).window_s == 0.2


@pytest.mark.parametrize("over, args, field", [
    ({}, ("foo", 2, None), "--executor"),
    ({}, ("ray", 0, None), "--workers"),
    ({}, ("ray", 2, -1.0), "--sync-window"),
    ({"deployment.router": "least_kv"}, ("ray", 2, None), "deployment.router"),
    ({"deployment.max_outstanding_per_replica": 4}, ("ray", 2, None), "deployment.max_outstanding_per_replica"),
    ({"workload.arrival": {"process": "closed_loop", "concurrency": 4}}, ("ray", 2, None), "workload.arrival"),
    ({"workload.sessions": {"turns": 2}}, ("ray", 2, None), "workload.sessions"),
])
def test_what_does_not_shard_is_one_input_error(over: dict, args: tuple, field: str) -> None:
    with pytest.raises(InputError) as e:
        plan_shards(make_scenario(**over), *args)
    assert e.value.field == field
