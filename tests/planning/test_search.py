"""Max-rate search: bisection against a brute-force scan, the throughput bound, idle-replica SLO checks."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.config import scenario_from_dict
from simulator.engine.simulate import build_step_model
from simulator.perf.memory import memory_plan
from simulator.perf.step import BatchShape
from simulator.planning.search import (Probe, min_window, probe, probe_requests, search_max_rate, throughput_bound,
                                      zero_load)

from .conftest import PLAN


def bound_of(s):
    sm = build_step_model(s)
    d = s.deployment
    mp = memory_plan(sm.model, sm.gpu, d.weight_dtype, d.kv_dtype, d.tp, d.pp,
                     gpu_memory_utilization=d.kv_cache.gpu_memory_utilization,
                     max_batched_tokens=d.batching.max_batched_tokens)
    return sm, throughput_bound(s, sm, mp.kv_tokens, 512, 64)


@pytest.fixture(scope="module")
def a100():
    return scenario_from_dict(PLAN, {"deployment.gpu": "a100-sxm-80gb"})


def test_bisection_agrees_with_a_brute_force_scan(a100):
    _, b = bound_of(a100)
    tol = 0.1
    res = search_max_rate(a100, b.rate, start=b.start, requests=200, rel_tol=tol)
    assert res.status == "ok" and res.hi - res.lo <= tol * res.hi
    window = min_window(a100, tol)
    # an independent scan over rates, with the same seed and run length rule
    grid = np.linspace(0.5 * res.lo, 1.5 * res.hi, 25)
    ok = np.array([probe(a100, r, 200, window_s=window).feasible(0.99) for r in grid])
    first_bad = grid[np.argmin(ok)]
    last_good = grid[ok][-1]
    assert ok[0] and not ok[-1]
    assert (ok[:np.argmin(ok)]).all() and not ok[np.argmin(ok):].any()     # one boundary (common random numbers)
    step = grid[1] - grid[0]
    # the boundary the scan brackets, [last_good, first_bad], overlaps the search's [lo, hi]
    assert last_good <= res.hi + 1e-9 and first_bad >= res.lo - 1e-9
    assert abs(res.lo - last_good) <= tol * res.hi + step


def test_throughput_bound_is_above_what_the_search_finds():
    for gpu in ("h100-sxm", "l40s"):
        s = scenario_from_dict(PLAN, {"deployment.gpu": gpu})
        _, b = bound_of(s)
        res = search_max_rate(s, b.rate, start=b.start, requests=200, rel_tol=0.1)
        assert res.status == "ok" and res.max_rate <= b.rate
        assert b.rate == pytest.approx(1.25 * min(b.decode_rate, b.prefill_rate))


def test_probes_are_long_enough_for_overload_to_show():
    s = scenario_from_dict(PLAN)
    assert min_window(s, 0.05) == 20.0              # max(1 s, ttft 0.5 s) / 0.05
    assert probe_requests(50.0, 200, 20.0) == 1000 and probe_requests(5.0, 200, 20.0) == 200
    p = probe(s, 30.0, 200, window_s=10.0)
    assert p.requests == 300


def test_zero_load_matches_hand_computed_prefill_time():
    s = scenario_from_dict(PLAN)
    sm = build_step_model(s)
    t_prefill = sm.price(BatchShape.prefill(1, 512), exact=True)[0]
    t_decode = sm.price(BatchShape.decode(1, 512 + 32), exact=True)[0]
    prompt, output = np.full(100, 512), np.full(100, 64)
    just_under = scenario_from_dict(PLAN, {"slo.ttft_s": t_prefill * 0.98})
    just_over = scenario_from_dict(PLAN, {"slo.ttft_s": t_prefill * 1.02})
    assert zero_load(just_under, sm, prompt, output)["ttft_s"] == 0.0
    assert zero_load(just_over, sm, prompt, output)["ttft_s"] == 1.0
    tight_tpot = scenario_from_dict(PLAN, {"slo.tpot_s": t_decode * 0.95})
    z = zero_load(tight_tpot, sm, prompt, output)
    assert z["tpot_s"] == 0.0 and z["all"] == 0.0


def test_zero_load_share_with_varied_prompts():
    s = scenario_from_dict(PLAN)
    sm = build_step_model(s)
    rng = np.random.default_rng(0)
    prompt = rng.integers(64, 4096, 400)
    output = np.full(400, 16)
    exact = np.array([sm.price(BatchShape.prefill(1, int(p)), exact=True)[0] for p in prompt])   # one chunk: p < 8192
    slo = float(np.median(exact))
    z = zero_load(scenario_from_dict(PLAN, {"slo.ttft_s": slo}), sm, prompt, output)
    assert z["ttft_s"] == pytest.approx(float(np.mean(exact <= slo)), abs=0.03)


def test_unreachable_slo_names_the_binding_one():
    s = scenario_from_dict(PLAN, {"slo.tpot_s": 0.001})
    _, b = bound_of(s)
    res = search_max_rate(s, b.rate, start=b.start, requests=100, rel_tol=0.1)
    assert res.status == "unreachable" and res.reason.startswith("tpot_s binds")


def test_stops_once_the_replica_count_is_decided(a100):
    _, b = bound_of(a100)
    full = search_max_rate(a100, b.rate, start=b.start, requests=200, rel_tol=0.02)
    target = 2.5 * full.max_rate
    quick = search_max_rate(a100, b.rate, start=b.start, requests=200, rel_tol=0.02, target_rate=target)
    assert quick.evaluations < full.evaluations
    assert math.ceil(target / quick.lo) == math.ceil(target / full.lo) == 3


class Capacity:
    """A replica that serves exactly ``cap`` req/s: feasible at or below it. Records every probed rate."""

    def __init__(self, cap):
        self.cap, self.rates, self.calls = cap, [], 0

    def __call__(self, tasks):
        self.calls += 1
        self.rates += [t.rate for t in tasks]
        ok = [t.rate <= self.cap for t in tasks]
        return [Probe(t.rate, 100, 1.0 if k else 0.5, True, 0.1, 0.01, 1.0, {"ttft_s": 1.0 if k else 0.5}, 1.0, 0)
                for t, k in zip(tasks, ok)]


@pytest.mark.parametrize("points", [1, 2, 3])
def test_k_ary_search_brackets_the_capacity(points):
    """Against a known capacity of 7.3 req/s in (0, 20]: the answer is feasible and within rel_tol of it;
    each round probes ``points`` evenly spaced rates strictly inside the bracket."""
    s = scenario_from_dict(PLAN)
    cap = Capacity(7.3)
    res = search_max_rate(s, 20.0, requests=100, rel_tol=0.02, points=points, probes=cap)
    assert res.status == "ok" and res.max_rate <= 7.3 and res.hi > 7.3
    assert res.hi - res.lo <= 0.02 * res.hi
    assert res.evaluations == len(cap.rates) == points * cap.calls
    if points == 1:       # plain bisection: the first probes are 10, 5, 7.5, 6.25
        assert cap.rates[:4] == [10.0, 5.0, 7.5, 6.25]
    assert cap.rates[:points] == pytest.approx([20.0 * j / (points + 1) for j in range(1, points + 1)])


def test_more_points_take_fewer_rounds():
    s = scenario_from_dict(PLAN)
    rounds = []
    for points in (1, 2, 3):
        cap = Capacity(7.3)
        search_max_rate(s, 20.0, requests=100, rel_tol=0.02, points=points, probes=cap)
        rounds.append(cap.calls)
    # each round divides the bracket by points + 1: 20 -> 7.3 +- 2% takes 8, 5 and 4 rounds
    assert rounds == [8, 5, 4]
