"""The clients in front of the serving system: who sends each request, and when.

Three kinds, one interface: :meth:`Clients.start` schedules the first arrivals, :meth:`Clients.done`
hears about each request that is over (answered or rejected) so that the next one can follow.

- :class:`OpenLoop`: requests arrive at the times the workload drew, whatever the system does.
- :class:`ClosedLoop`: ``concurrency`` clients, each sending its next request when its previous one
  ends (plus its think time; a rejected request is followed at once).
- :class:`Sessions`: multi-turn conversations; a session's first turn arrives at its start time,
  each later turn a think time after the previous turn ends."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from ..workload.prefix import SessionLinks
from .state import REJECTED, Requests

#: Hands a request to the front door (the router, or a service cache / cascade in front of it).
Arrive = Callable[[int], None]


class Clients:
    """Issues the run's ``n`` requests through ``arrive``; calls ``arrivals_over`` after the last one.
    ``follows`` says whether :meth:`done` matters (closed loops and sessions follow completions)."""

    follows = True

    def __init__(self, env: simpy.Environment, reqs: Requests, arrive: Arrive,
                 arrivals_over: Callable[[], None]) -> None:
        self.env, self.reqs, self.arrive, self.arrivals_over = env, reqs, arrive, arrivals_over
        self.n = reqs.n

    def start(self) -> None:
        """Schedule the first arrivals."""
        raise NotImplementedError

    def done(self, rid: int) -> None:
        """Request ``rid`` is over; open-loop clients do not care."""


class OpenLoop(Clients):
    """Arrivals at the drawn times (``reqs.arrival``), in request order."""

    follows = False

    def start(self) -> None:
        self.env.process(self._arrive())

    def _arrive(self):
        env, reqs, arrive = self.env, self.reqs, self.arrive
        times = reqs.arrival
        for rid in range(self.n):
            t = times[rid]
            if t > env.now:
                yield env.timeout(t - env.now)
            reqs.arrival[rid] = env.now   # the clock, so that waits are never negative by rounding
            arrive(rid)
        self.arrivals_over()


class ClosedLoop(Clients):
    """``concurrency`` clients sending requests in request order; ``think_s`` after each answer."""

    def __init__(self, env: simpy.Environment, reqs: Requests, arrive: Arrive,
                 arrivals_over: Callable[[], None], *, concurrency: int, think_s: np.ndarray | None) -> None:
        super().__init__(env, reqs, arrive, arrivals_over)
        self.concurrency = concurrency
        self.think = think_s if think_s is not None else np.zeros(self.n)
        self.next = 0

    def start(self) -> None:
        for _ in range(min(self.concurrency, self.n)):
            self._issue()

    def _issue(self) -> None:
        rid = self.next
        if rid >= self.n:
            return
        self.next += 1
        self.reqs.arrival[rid] = self.env.now
        self.arrive(rid)
        if self.next >= self.n:
            self.arrivals_over()

    def done(self, rid: int) -> None:
        delay = 0.0 if self.reqs.status[rid] == REJECTED else float(self.think[rid])
        self.env.timeout(delay).callbacks.append(lambda _ev: self._issue())


class Sessions(Clients):
    """Multi-turn sessions: first turns at ``sessions.start_s``, later turns after the previous one."""

    def __init__(self, env: simpy.Environment, reqs: Requests, arrive: Arrive,
                 arrivals_over: Callable[[], None], *, sessions: SessionLinks) -> None:
        super().__init__(env, reqs, arrive, arrivals_over)
        self.sessions = sessions
        self.next_turn = np.full(self.n, -1, dtype=np.int64)
        later = sessions.prev >= 0
        self.next_turn[sessions.prev[later]] = np.flatnonzero(later)
        self.issued = 0

    def start(self) -> None:
        self.env.process(self._first_turns())

    def _first_turns(self):
        env, starts = self.env, self.sessions.start_s
        for rid in np.flatnonzero(~np.isnan(starts)).tolist():
            t = starts[rid]
            if t > env.now:
                yield env.timeout(t - env.now)
            self._turn(rid)

    def _turn(self, rid: int) -> None:
        self.reqs.arrival[rid] = self.env.now
        self.issued += 1
        self.arrive(rid)
        if self.issued >= self.n:
            self.arrivals_over()

    def done(self, rid: int) -> None:
        nxt = int(self.next_turn[rid])
        if nxt >= 0:
            delay = float(self.sessions.think_s[nxt])
            self.env.timeout(delay).callbacks.append(lambda _ev, nxt=nxt: self._turn(nxt))
