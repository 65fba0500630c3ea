"""Service-level response caches and model cascades."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.engine.simulate import simulate
from simulator.engine.state import DONE
from simulator.metrics.summary import per_request, summarize

from .conftest import make_scenario

CACHES = {"exact": {"hit_rate": 0.2, "lookup_s": 0.002}, "semantic": {"hit_rate": 0.25, "lookup_s": 0.015}}


def test_cache_hits_return_after_the_lookups_without_gpus():
    res = simulate(make_scenario(**{"deployment.service_cache": CACHES, "workload.requests": 4000,
                                    "workload.arrival.rate": 20.0}))
    df = per_request(res)
    exact, sem, gpu = (df["served_by"] == x for x in ("exact_cache", "semantic_cache", "gpu"))
    assert exact.mean() == pytest.approx(0.2, abs=0.02)
    assert sem.mean() == pytest.approx(0.8 * 0.25, abs=0.02)      # semantic is asked only after an exact miss
    assert np.allclose(df.loc[exact, "e2e_s"], 0.002) and np.allclose(df.loc[sem, "e2e_s"], 0.017)
    assert (df.loc[exact | sem, "prefill_tokens_computed"] == 0).all()
    assert (df.loc[exact | sem, "replica"] == -1).all()
    assert (df.loc[gpu, "e2e_s"] > 0.017).all()                   # misses pay both lookups first
    assert (df["finished"]).all()
    sc = summarize(res)["service_cache"]
    assert sc["exact_hits"] == int(exact.sum()) and sc["semantic_hits"] == int(sem.sum())
    # the GPU saw only the misses
    assert int(res.requests.prefill_computed.sum()) == int(df.loc[gpu, "prompt_tokens"].sum())


def _lone_e2e(model: str, tp: int) -> float:
    res = simulate(make_scenario(**{"model": model, "deployment.tp": tp, "workload.requests": 1}))
    return float(per_request(res)["e2e_s"].iloc[0])


def test_cascade_latencies_add_for_escalated_requests():
    """Requests far apart (no queueing): an escalated request takes the small model's time plus the large one's."""
    small, large = _lone_e2e("llama-3.2-1b", 1), _lone_e2e("llama-3.1-70b", 4)
    s = make_scenario(**{"model": "llama-3.1-70b", "deployment.tp": 4, "workload.requests": 60,
                         "workload.arrival": {"process": "constant", "rate": 0.5},
                         "deployment.cascade": {"small": {"model": "llama-3.2-1b"}, "route": {"share": 0.5},
                                                "escalate": 0.4}})
    res = simulate(s)
    df = per_request(res)
    by = df.groupby("served_by")["e2e_s"]
    assert by.min()["small_model"] == pytest.approx(small, rel=1e-9)
    assert by.max()["small_model"] == pytest.approx(small, rel=1e-9)
    assert by.mean()["gpu"] == pytest.approx(large, rel=1e-9)
    assert by.mean()["small_then_large"] == pytest.approx(small + large, rel=1e-9)
    c = summarize(res)["cascade"]
    assert c["small_only"] + c["escalated"] + c["large_only"] == 60
    assert c["escalated"] > 0 and c["small_only"] > c["escalated"]
    assert res.total_gpus == 4 + 1
    assert (res.requests.status == DONE).all()


def test_cascade_route_by_prompt_length():
    s = make_scenario(**{"workload.prompt_tokens": {"dist": "uniform", "low": 100, "high": 1000},
                         "deployment.cascade": {"small": {"model": "llama-3.2-1b"},
                                                "route": {"max_prompt_tokens": 500}}})
    df = per_request(simulate(s))
    assert (df.loc[df["prompt_tokens"] <= 500, "served_by"] == "small_model").all()
    assert (df.loc[df["prompt_tokens"] > 500, "served_by"] == "gpu").all()
