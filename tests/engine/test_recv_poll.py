"""Polling for new requests (``deployment.batching.recv_interval``, SGLang's --scheduler-recv-interval):
while decodes run, the scheduler takes new requests in every N steps, and at once after a step with
prefill or when idle."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.config.loader import scenario_from_dict
from simulator.engine.recv_poll import RecvPoll
from simulator.errors import InputError

from .test_batch_wait import _waited
from .test_decode_set import SCENARIOS


def test_polling_counts_decode_steps_and_polls_after_a_prefill() -> None:
    p = RecvPoll(10)
    assert p.cutoff((1.0, 3), 1.0, 3) == (1.0, 3)          # the first batch receives
    p.stepped(4, False)
    assert p.cutoff((2.0, 5), 2.0, 5) == (1.0, 3) and p.steps_left() == 6
    p.stepped(6, False)
    assert p.cutoff((3.0, 9), 3.0, 9) == (3.0, 9)          # 10 decode steps: it polls
    p.stepped(1, True)
    assert p.cutoff((4.0, 12), 4.0, 12) == (4.0, 12)       # a step with prefill: the next batch polls
    assert p.cutoff((np.inf, 0), 5.0, 13) == (5.0, 13)     # idle: it polls now


@pytest.mark.parametrize("interval", [4, 10])
def test_a_prompt_waits_for_the_next_poll(interval: int) -> None:
    without = _waited(None, first=True)
    w = _waited(None, first=True, **{"deployment.batching.recv_interval": interval})
    assert np.all(without == 1)
    # a lone prompt that arrives while decodes run waits 1..interval step starts; polls come every
    # `interval` steps whatever the arrival times, so the wait is spread over the whole range, its mean
    # near (interval + 1) / 2 (uniform arrivals within a poll cycle)
    assert w.min() >= 1 and w.max() == interval
    assert abs(w.mean() - (interval + 1) / 2) < interval / 4


def test_interval_one_is_every_step() -> None:
    assert np.array_equal(_waited(None), _waited(None, **{"deployment.batching.recv_interval": 1}))


def test_an_idle_replica_receives_at_once() -> None:
    from simulator.engine.simulate import simulate

    from .conftest import make_scenario
    res = simulate(make_scenario(**{"deployment.batching.recv_interval": 30, "workload.requests": 10,
                                    "workload.arrival": {"process": "closed_loop", "concurrency": 1}}))
    r = res.requests
    assert np.all(r.finish > 0) and np.array_equal(r.first_sched, r.arrival)


@pytest.mark.parametrize("bad", [0, -3, 1.5, "ten"])
def test_bad_interval_is_refused(bad) -> None:
    with pytest.raises(InputError, match="recv_interval"):
        scenario_from_dict({"model": "llama-3.1-8b",
                            "deployment": {"gpu": "h100-sxm", "batching": {"recv_interval": bad}}})


@pytest.mark.parametrize("key,value", [("recv_interval", 10), ("prefill_wait", {"steps": 5, "tokens_ratio": 0.5})])
def test_polling_and_waiting_need_continuous_batching(key: str, value) -> None:
    with pytest.raises(InputError, match=f"{key} applies to continuous batching only"):
        scenario_from_dict({"model": "llama-3.1-8b",
                            "deployment": {"gpu": "h100-sxm", "batching": {"policy": "static", key: value}}})


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_engine_path_finishes_with_polling(name: str) -> None:
    """Preemption, swap, pipeline stages, speculative runs, prefix caching, disaggregated pools: with a
    poll every 7 steps every request still finishes, with every token generated once, and none is
    scheduled before it arrived."""
    from simulator.engine.simulate import simulate

    from .conftest import make_scenario
    r = simulate(make_scenario(**{**SCENARIOS[name], "deployment.batching.recv_interval": 7})).requests
    assert np.all(r.finish > 0) and r.generated.sum() == r.output.sum()
    assert np.all(r.first_sched >= r.arrival)
