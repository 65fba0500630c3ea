"""When a batch is formed: a request joins only a step whose batch was formed after it arrived. An
engine that overlaps host work with the GPU forms each batch while the step before it runs."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import simpy

from simulator.engine.schedulers.base import ANY, Scheduler, joined_before, run_seconds
from simulator.engine.simulate import simulate

from ..conftest import make_scenario


class _Loop(Scheduler):
    """A scheduling loop with a settable number of running requests and no loop of its own."""

    n = 1

    @property
    def running(self) -> int:
        return self.n

    def loop(self):
        yield self.env.timeout(0)


def _loop(ahead: bool, submits: int = 7) -> _Loop:
    env = simpy.Environment()
    return _Loop(SimpleNamespace(env=env, schedules_ahead=ahead, submits=submits))


@pytest.mark.parametrize("ahead", [False, True])
def test_with_nothing_running_any_waiting_request_may_start(ahead: bool) -> None:
    loop = _loop(ahead)
    loop.n = 0
    assert loop.cutoff() == ANY


def test_a_loop_that_forms_a_batch_when_the_step_ends_takes_what_arrived_before_its_completions() -> None:
    loop = _loop(False, submits=5)
    loop.env.run(until=0.3)
    loop.stepped(0.2, 4)          # 5 requests queued when the step ended, before its completions
    loop.r.submits = 7            # its completions' clients sent two more
    assert loop.cutoff() == (0.3, 5)


def test_a_loop_that_schedules_ahead_took_its_batch_as_the_step_before_started() -> None:
    loop = _loop(True, submits=5)
    loop.env.run(until=0.3)
    loop.stepped(0.2, 4)
    assert loop.cutoff() == (0.2, 4)
    loop.step_end = 0.25          # idle since 0.25: nothing was in flight, the batch is formed now
    assert loop.cutoff() == (0.3, 5)


def test_joined_before_orders_equal_times_by_arrival() -> None:
    reqs = SimpleNamespace(queued=np.array([0.1, 0.2, 0.2, 0.3]), queued_seq=np.array([1, 2, 3, 4]))
    cut = (0.2, 2)
    assert [joined_before(reqs, i, cut) for i in range(4)] == [True, True, False, False]
    assert all(joined_before(reqs, i, ANY) for i in range(4))


def test_requests_waiting_when_a_step_launched_may_join_the_step_after_it() -> None:
    # eight prompts at t = 0, two fit a step's budget: under host overlap the batch after the first step
    # was formed as it launched, when all eight were already queued, so it takes the next ones
    res = simulate(make_scenario(**{"deployment.engine": "fused", "deployment.overlap_host": True,
                                    "deployment.batching.max_batched_tokens": 520, "workload.requests": 8,
                                    "workload.arrival": {"process": "closed_loop", "concurrency": 8},
                                    "workload.output_tokens": {"dist": "fixed", "value": 50}}))
    r, starts = res.requests, _step_starts(res.steps)
    assert np.all(r.arrival == 0) and np.all(r.finish > 0)
    admitted = np.unique(r.first_sched)
    assert admitted[0] == 0 and admitted[1] == starts[1]    # the second step admits more of them


def _step_starts(steps: dict[str, np.ndarray]) -> np.ndarray:
    """Every step's start time, the steps of a decode run expanded."""
    out = []
    for t0, k, d0, d1 in zip(steps["t_start"], steps["steps"], steps["dt_first"], steps["dt_last"]):
        slope = (d1 - d0) / (k - 1) if k > 1 else 0.0
        out.extend(t0 + run_seconds(j, d0, slope) for j in range(int(k)))
    return np.sort(np.array(out))


def _boundaries_waited(engine: str, overlap: bool) -> np.ndarray:
    """For each request that arrived while a step ran: the step starts after its arrival up to and
    including its first scheduled step."""
    res = simulate(make_scenario(**{"deployment.engine": engine, "deployment.overlap_host": overlap,
                                    "workload.arrival.rate": 4.0, "workload.requests": 150,
                                    "workload.output_tokens": {"dist": "fixed", "value": 200}}))
    r, starts = res.requests, _step_starts(res.steps)
    assert np.all(r.finish > 0)
    ends = np.append(starts[1:], np.inf)
    busy = np.array([bool(np.any((starts < a) & (a < ends))) and s > a for a, s in zip(r.arrival, r.first_sched)])
    assert busy.sum() > 50      # most arrivals meet a running batch at this load
    first = np.searchsorted(starts, r.arrival[busy], side="right")
    last = np.searchsorted(starts, r.first_sched[busy], side="right")
    return last - first


def test_a_request_waits_for_the_step_in_progress_to_end() -> None:
    waited = _boundaries_waited("trtllm", overlap=False)
    assert waited.min() >= 1 and np.median(waited) == 1


def test_under_host_overlap_a_request_also_waits_out_the_step_already_formed() -> None:
    waited = _boundaries_waited("trtllm", overlap=True)
    assert waited.min() >= 2 and np.median(waited) == 2


@pytest.mark.parametrize("engine", ["fused", "vllm", "trtllm"])
def test_a_client_alone_is_never_held_back(engine: str) -> None:
    res = simulate(make_scenario(**{"deployment.engine": engine, "workload.requests": 20,
                                    "workload.arrival": {"process": "closed_loop", "concurrency": 1}}))
    r = res.requests
    assert np.all(r.finish > 0) and np.array_equal(r.first_sched, r.arrival)


def test_a_closed_loop_clients_next_request_misses_the_step_that_starts_as_it_arrives() -> None:
    # two clients, outputs of different lengths: a client's next request arrives as a step ends, often
    # while the other client's request decodes; the step starting then was formed without it
    res = simulate(make_scenario(**{"deployment.engine": "fused", "workload.requests": 40, "seed": 3,
                                    "workload.arrival": {"process": "closed_loop", "concurrency": 2},
                                    "workload.output_tokens": {"dist": "uniform", "low": 20, "high": 60}}))
    r, starts = res.requests, _step_starts(res.steps)
    assert np.all(r.finish > 0)
    a = r.arrival
    other = np.array([bool(np.any((r.first_sched < t) & (t < r.finish))) for t in a])
    assert other.sum() >= 10
    assert np.isin(a[other], starts).all()    # a client's next request arrives exactly as a step starts
    nxt = starts[np.searchsorted(starts, a[other], side="right")]
    assert np.all(r.first_sched[other] >= nxt)   # not in the step starting at its arrival
