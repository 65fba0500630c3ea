"""One shard of a sharded run: some of a scenario's replicas, fed the requests routed to them.

A :class:`ShardSim` builds only its replicas (their global indices, so per-replica random streams are
the single-process run's), takes arrivals in batches (:meth:`ShardSim.push`), runs its clock up to a
given time (:meth:`ShardSim.advance`, the synchronisation points of load-aware routing) and, once
every arrival is in, runs to the last completion (:meth:`ShardSim.finish`). Arrivals land on the
exact clock values the single-process arrival loop produces (:func:`arrival_clock`), so a replica
fed the same requests goes through the same states."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from heapq import heappush
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL

from ..config.scenario import Scenario
from ..workload.generate import generate_plan
from .engine_defaults import effective_deployment
from .itl import ItlLog
from .prefix_cache import KeyStore
from .replica import Replica
from .state import Requests
from .step_log import StepLog
from .system import ServingSystem


def arrival_clock(times: np.ndarray) -> np.ndarray:
    """The clock values at which the single-process arrival loop admits each request: it waits
    ``t - now`` from the previous arrival's clock, so float rounding makes these differ from ``times``
    in the last bits."""
    out = np.empty(len(times))
    now = 0.0
    for k, t in enumerate(times.tolist()):
        if t > now:
            now = now + (t - now)
        out[k] = now
    return out


@dataclass
class ShardPart:
    """What a shard hands back: its requests' columns, its steps, its replicas' figures."""

    rids: np.ndarray
    columns: dict[str, np.ndarray]
    steps: dict[str, np.ndarray]
    itl: tuple[np.ndarray, np.ndarray]
    replicas: list[int]
    kv_in_use_at_end: list[int]
    kv_peak: list[int]
    kv_capacity: list[int]
    features: dict[str, Any] = field(default_factory=dict)


class _Pinned:
    """A router that sends each request where the coordinator routed it."""

    def __init__(self, route: np.ndarray, reps: list[Replica]) -> None:
        self.route, self.by_index = route, {r.index: r for r in reps}

    def choose(self, rid: int, candidates: Any = None) -> Replica:
        return self.by_index[int(self.route[rid])]


class ShardSim:
    """Replicas ``replicas`` (global indices) of scenario ``s``; open-loop arrivals only."""

    def __init__(self, s: Scenario, replicas: list[int]) -> None:
        d = effective_deployment(s.deployment)
        wp = generate_plan(s.workload, s.seed)
        table = wp.table
        self.n = n = len(table)
        self.reqs = Requests(table.prompt_tokens, table.output_tokens, table.arrival_s)
        self.env = simpy.Environment()
        self.log = StepLog()
        self.itl = ItlLog(n)
        keys = KeyStore(self.reqs, wp.segments) if d.kv_cache.prefix_caching else None
        self.keys = keys
        self.system = ServingSystem(self.env, s.model, d, self.reqs, log=self.log, itl=self.itl, keys=keys,
                                    seed=s.seed, on_done=self._done, only=frozenset(replicas))
        self.route = np.full(n, -1, dtype=np.int64)
        self.system.router = _Pinned(self.route, self.system.front)  # type: ignore[assignment]
        self.mine: list[np.ndarray] = []
        self._rids: list[int] = []            # pushed arrivals, in order; the next one at ``_next``
        self._times: list[float] = []
        self._next = 0
        self._last: float | None = None
        self._armed = self._over = False

    def _done(self, ids: np.ndarray) -> None:
        if self.keys is not None:
            for rid in ids.tolist():
                self.keys.forget(rid)

    def push(self, rids: np.ndarray, replicas: np.ndarray, clock: np.ndarray, last: float | None = None) -> None:
        """Requests ``rids`` (in arrival order, after those pushed before) go to ``replicas`` at the clock
        values ``clock``. ``last``: the clock of the run's last arrival, once every request has been
        pushed; the replicas learn at that time that arrivals are over, as in the single-process run.
        As there, one arrival event is pending at a time."""
        if len(rids):
            self.route[rids] = replicas
            self.mine.append(rids)
            if self._next > 65_536:
                del self._rids[: self._next], self._times[: self._next]
                self._next = 0
            self._rids.extend(rids.tolist())
            self._times.extend(clock.tolist())
        if last is not None:
            self._last = last
        self._arm()

    def _arm(self) -> None:
        if self._armed or self._over:
            return
        if self._next < len(self._times):
            self._at(self._times[self._next], self._arrive)
        elif self._last is not None:
            self._at(self._last, self._arrivals_over)
        else:
            return
        self._armed = True

    def _at(self, t: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` at simulated time ``t`` (a Timeout at an absolute time, no rounding)."""
        env = self.env
        ev = env.event()
        ev._ok, ev._value = True, None
        heappush(env._queue, (t, NORMAL, next(env._eid), ev))   # type: ignore[attr-defined]
        ev.callbacks.append(lambda _ev: fn())

    def _arrive(self) -> None:
        """The requests due now arrive (those at one instant together, as the single-process loop does)."""
        self._armed = False
        reqs, admit, rids, times = self.reqs, self.system.admit, self._rids, self._times
        now, k, end = self.env.now, self._next, len(times)
        while k < end and times[k] == now:
            rid = rids[k]
            reqs.arrival[rid] = now
            admit(rid)
            k += 1
        self._next = k
        if k == end and now == self._last:
            self._arrivals_over()
        self._arm()

    def _arrivals_over(self) -> None:
        self._armed, self._over = False, True
        self.system.finish_arrivals()

    def advance(self, until: float) -> dict[int, int]:
        """Run up to simulated time ``until``; returns each replica's outstanding requests then."""
        if until > self.env.now:
            self.env.run(until=until)
        return {r.index: r.outstanding for r in self.system.front}

    def finish(self) -> ShardPart:
        """Every arrival is in (pushed with ``last``): run to the last completion and hand back the part."""
        self.env.run()
        reqs, sysm = self.reqs, self.system
        rids = np.sort(np.concatenate(self.mine)) if self.mine else np.zeros(0, dtype=np.int64)
        cols = {k: v[rids] for k, v in vars(reqs).items() if isinstance(v, np.ndarray) and len(v) == self.n}
        res_itl = self.itl.per_request(self.n)[0]
        reps = sysm.replicas
        stats = sysm.stats()
        return ShardPart(rids=rids, columns=cols, steps=self.log.frame(),
                         itl=(res_itl[rids, 0], res_itl[rids, 1]), replicas=[r.index for r in reps],
                         kv_in_use_at_end=[r.pool.used for r in reps], kv_peak=[r.pool.peak for r in reps],
                         kv_capacity=[r.pool.capacity for r in reps], features=stats)

