"""The indexed router makes the reference router's choices, ties included: operation by operation on
stand-in replicas, and request by request in whole simulations."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.engine import system
from simulator.engine.router import Router
from simulator.engine.router_index import OutstandingHeap, PrefixIndex, WatchedLoad
from simulator.engine.router_reference import POLICIES, ReferenceRouter
from simulator.engine.simulate import simulate
from simulator.errors import InputError

from .conftest import make_scenario, uniform_workload


class FakeCache:
    """The parts of a prefix cache the routers read: entries, block keys, the hit limit."""

    def __init__(self, keys: dict[int, list[int]]) -> None:
        self.bs, self.refs, self.all_keys = 16, {}, keys
        self.index: PrefixIndex | None = None
        self.pos = 0

    def watch(self, index: PrefixIndex, pos: int) -> None:
        self.index, self.pos = index, pos

    def keys(self, rid: int) -> list[int]:
        return self.all_keys[rid]

    def _limit(self, rid: int) -> int:
        return max(0, len(self.all_keys[rid]) - rid % 2)   # odd requests may not hit their last block

    def match(self, rid: int) -> tuple[int, int]:
        h = 0
        for key in self.keys(rid)[: self._limit(rid)]:
            if key not in self.refs:
                break
            h += 1
        return h, 0

    def put(self, key: int) -> None:
        if key not in self.refs:
            self.refs[key] = 1
            if self.index is not None:
                self.index.add(key, self.pos)

    def evict(self, key: int) -> None:
        if key in self.refs:
            del self.refs[key]
            if self.index is not None:
                self.index.drop(key, self.pos)


class FakePool:
    def __init__(self, capacity: int) -> None:
        self.used, self.capacity = 0, capacity


class FakeReplica(WatchedLoad):
    """A replica as the routers see it: outstanding count (watched), KV use, prefix cache."""

    def __init__(self, index: int, keys: dict[int, list[int]]) -> None:
        self.index, self._outstanding, self._load_watchers = index, 0, []
        self.cache, self.pool = FakeCache(keys), FakePool(100)

    def cached_prefix(self, rid: int) -> int:
        return self.cache.match(rid)[0]


N_REQ = 12
# request keys: chains over a small alphabet, so requests share leading runs and replicas tie often
KEYS = st.lists(st.lists(st.integers(0, 5), max_size=5), min_size=N_REQ, max_size=N_REQ)
OPS = st.lists(st.one_of(
    st.tuples(st.just("load"), st.integers(0, 40), st.integers(0, 2)),
    st.tuples(st.just("put"), st.integers(0, 40), st.integers(0, 5)),
    st.tuples(st.just("evict"), st.integers(0, 40), st.integers(0, 5)),
    st.tuples(st.just("kv"), st.integers(0, 40), st.integers(0, 100)),
    st.tuples(st.just("choose"), st.integers(0, N_REQ - 1), st.integers(0, 7)),
), max_size=80)


@settings(max_examples=300, deadline=None)
@given(policy=st.sampled_from(POLICIES), n=st.integers(1, 9), chains=KEYS, ops=OPS, seed=st.integers(0, 99))
def test_indexed_choices_equal_reference_choices(policy: str, n: int, chains: list[list[int]],
                                                 ops: list[tuple[str, int, int]], seed: int) -> None:
    # a key's value encodes its depth and its chain so far, as block hash chains do
    keys = {rid: [hash(tuple(c[: i + 1])) for i in range(len(c))] for rid, c in enumerate(chains)}
    reps = [FakeReplica(10 + 3 * i, keys) for i in range(n)]      # indices need not be positions
    fast, ref = Router(policy, reps, seed), ReferenceRouter(policy, reps, seed)
    for op, a, b in ops:
        r = reps[a % n]
        if op == "load":
            r.outstanding = b
        elif op == "put":
            for key in keys[a % N_REQ][: b + 1]:      # a request caches a leading run of its blocks
                r.cache.put(key)
        elif op == "evict":
            chain = keys[a % N_REQ]
            if chain:
                r.cache.evict(chain[b % len(chain)])   # any block: the run may get a hole
        elif op == "kv":
            r.pool.used = b
        else:
            cands = None if b < 5 else [x for x in reps if x.outstanding < b - 3] or None
            assert fast.choose(a, cands) is ref.choose(a, cands)
        assert fast.choose(a % N_REQ) is ref.choose(a % N_REQ)


def test_outstanding_heap_stays_bounded() -> None:
    reps = [FakeReplica(i, {}) for i in range(3)]
    heap = OutstandingHeap(reps)
    for k in range(10_000):
        reps[k % 3].outstanding = k % 7
    assert len(heap.heap) <= heap.cap
    assert reps[heap.best()] is min(reps, key=lambda r: (r.outstanding, r.index))


def test_unknown_policy_is_an_input_error() -> None:
    with pytest.raises(InputError, match="deployment.router"):
        Router("fastest", [])


def _run(over: dict[str, Any], router: type) -> np.ndarray:
    mp = pytest.MonkeyPatch()
    mp.setattr(system, "Router", router)
    try:
        r = simulate(make_scenario(**over)).requests
    finally:
        mp.undo()
    return np.stack([r.replica, r.finish, r.cached])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({
    **uniform_workload(200.0, 150, 1200, 120, rate_low=5.0, requests_low=20),
    "workload.prefix": st.fixed_dictionaries({"system_prompt_tokens": st.integers(1, 1500),
                                              "share": st.floats(0, 1), "prompts": st.integers(1, 4)}),
    "deployment.kv_cache.block_size": st.sampled_from([8, 16]),
    "deployment.kv_cache.num_blocks": st.integers(200, 2000),
    "deployment.kv_cache.prefix_caching": st.just(True),
    "deployment.replicas": st.integers(2, 6),
    "deployment.router": st.sampled_from(["least_outstanding", "prefix_aware"]),
    "deployment.max_outstanding_per_replica": st.one_of(st.none(), st.integers(1, 8)),
    "seed": st.integers(0, 10_000),
}))
def test_simulations_route_identically(over: dict[str, Any]) -> None:
    over = {k: v for k, v in over.items() if v is not None}
    assert np.array_equal(_run(over, Router), _run(over, ReferenceRouter), equal_nan=True)


def test_disaggregated_decode_router_routes_identically() -> None:
    over = {"workload.requests": 120, "workload.arrival.rate": 40.0, "deployment.router": "least_outstanding",
            "deployment.disaggregation": {"prefill": {"replicas": 2}, "decode": {"replicas": 3},
                                                  "link": {"bandwidth_gbps": 10.0, "latency_s": 0.002}}}
    assert np.array_equal(_run(over, Router), _run(over, ReferenceRouter), equal_nan=True)
