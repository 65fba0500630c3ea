"""The clients in front of the serving system, driven by a stand-in server of fixed service time."""
import numpy as np
import simpy

from simulator.engine.clients import ClosedLoop, OpenLoop, Sessions
from simulator.engine.state import REJECTED, Requests
from simulator.workload.prefix import SessionLinks


def _serve(cls, n, service_s=1.0, arrival=None, reject=(), **kw):
    """Run ``cls`` against a server that answers every request ``service_s`` after it arrives."""
    env = simpy.Environment()
    reqs = Requests(np.full(n, 8), np.full(n, 4), arrival)
    over = []
    clients = None

    def arrive(rid):
        def finish(_ev):
            if rid in reject:
                reqs.status[rid] = REJECTED
            clients.done(rid)
        env.timeout(0.0 if rid in reject else service_s).callbacks.append(finish)

    clients = cls(env, reqs, arrive, lambda: over.append(env.now), **kw)
    clients.start()
    env.run()
    return reqs.arrival, over


def test_open_loop_arrives_at_the_drawn_times_and_ends_once():
    times = np.array([0.0, 0.5, 0.5, 2.25, 7.0])
    arrival, over = _serve(OpenLoop, 5, arrival=times.copy())
    assert np.array_equal(arrival, times)
    assert over == [7.0]


def test_closed_loop_keeps_concurrency_requests_in_flight():
    arrival, over = _serve(ClosedLoop, 10, concurrency=3, think_s=None)
    # three clients, one-second answers: waves at 0, 1, 2 and one request left for t = 3
    assert arrival.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert over == [3.0]


def test_closed_loop_thinks_after_answers_but_not_after_rejections():
    think = np.full(4, 0.5)
    arrival, _ = _serve(ClosedLoop, 4, concurrency=1, think_s=think, reject={1})
    # 0 answered at 1.0, next after 0.5 s think; 1 rejected at once, 2 follows without thinking
    assert arrival.tolist() == [0.0, 1.5, 1.5, 3.0]


def test_closed_loop_with_more_clients_than_requests():
    arrival, over = _serve(ClosedLoop, 2, concurrency=8, think_s=None)
    assert arrival.tolist() == [0.0, 0.0]
    assert over == [0.0]


def test_sessions_follow_their_previous_turn():
    # two sessions: 0 -> 2 (think 0.25 s) starting at 0; 1 -> 3 -> 4 (think 1 s) starting at 0.5
    links = SessionLinks(start_s=np.array([0.0, 0.5, np.nan, np.nan, np.nan]),
                         prev=np.array([-1, -1, 0, 1, 3]), think_s=np.array([0.0, 0.0, 0.25, 1.0, 1.0]))
    arrival, over = _serve(Sessions, 5, sessions=links)
    assert arrival.tolist() == [0.0, 0.5, 1.25, 2.5, 4.5]
    assert over == [4.5]     # arrivals are over when the last turn is issued
