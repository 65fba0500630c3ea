"""What every scheduling loop of a replica does: sleep until there is work, wake on an arrival or
freed memory, wait out a *run* of steps whose durations grow linearly (d0 + j·slope; an arrival may
cut it after the step in progress), and log a run as one row of the step log."""
from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, NamedTuple

import simpy

from ...perf.part import StepCost
from ..step_log import StepRow

if TYPE_CHECKING:
    from ..replica import Replica
    from ..state import Requests


def run_seconds(k: int, d0: float, slope: float) -> float:
    """Seconds of the first ``k`` steps of a run whose step j (from 0) lasts d0 + j·slope."""
    return k * d0 + slope * k * (k - 1) / 2


def steps_within(elapsed: float, steps: int, d0: float, slope: float) -> int:
    """How many of a run's ``steps`` steps have ended ``elapsed`` seconds after it started."""
    lo, hi = 0, steps          # run_seconds is increasing in k: the largest k with run_seconds <= elapsed
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if run_seconds(mid, d0, slope) <= elapsed:
            lo = mid
        else:
            hi = mid - 1
    return lo


#: When a batch was formed: (time, requests the replica had queued by then). A request joined the queue
#: before it if it did earlier, or at that time among the first that many.
Cutoff = tuple[float, int]
ANY: Cutoff = (math.inf, 0)


def joined_before(reqs: "Requests", rid: int, cut: Cutoff) -> bool:
    """Whether request ``rid`` joined its queue before the batch formed at ``cut``."""
    q = reqs.queued[rid]
    return q < cut[0] or (q == cut[0] and reqs.queued_seq[rid] <= cut[1])


class DecodeRun(NamedTuple):
    """A planned run of ``steps`` decode steps, priced by its first and last step (durations, FLOPs
    and bytes in between are linear in the step number). A named tuple: one is built per run."""

    steps: int
    first: StepCost
    last: StepCost

    @property
    def d0(self) -> float:
        return self.first.wall_s

    @property
    def slope(self) -> float:
        """Seconds each step adds to the one before."""
        return (self.last.wall_s - self.first.wall_s) / (self.steps - 1) if self.steps > 1 else 0.0


class Scheduler:
    """A scheduling loop of one replica. Subclasses define :meth:`loop` (a SimPy generator),
    :attr:`running`, and call :meth:`start` at the end of their ``__init__``."""

    def __init__(self, replica: "Replica") -> None:
        self.r = replica
        self.env: simpy.Environment = replica.env
        self.idle = False
        self.interruptible = False
        self.stalled = False   # its oldest prefill waits for blocks that newer requests of other loops hold
        self.wake_ev: simpy.Event | None = None
        self.proc: simpy.Process | None = None
        self.step_start = self.step_end = -math.inf   # when its latest step started and ended
        self.known_start = self.known_end = 0           # requests queued at the replica by then (see stepped)

    def start(self) -> None:
        self.proc = self.env.process(self.loop())

    def loop(self) -> Generator[Any, Any, None]:
        raise NotImplementedError

    @property
    def running(self) -> int:
        """Requests this loop runs now."""
        raise NotImplementedError

    def newest_seq(self) -> int:
        """Admission number of this loop's most recently admitted running request (0: none)."""
        raise NotImplementedError

    # ---- when a batch is formed ------------------------------------------------------
    def cutoff(self) -> Cutoff:
        """When the next step's batch was formed: requests that joined the queue before may join it. A
        loop forms a batch when the step before it ends, or, if its engine schedules ahead (overlaps host
        work with the GPU), when the step before it starts. Requests that a step's completions bring (a
        client's next request after its last token) arrive after the next batch was formed. With
        nothing running: any request."""
        if not self.running:
            return ANY
        now = self.env.now
        if self.step_end != now:      # the loop was idle since its last step: it forms the batch now
            return now, self.r.submits
        if self.r.schedules_ahead:
            return self.step_start, self.known_start
        return now, self.known_end

    def stepped(self, start: float, known_at_start: int) -> None:
        """A step that started at ``start`` (the replica had queued ``known_at_start`` requests then)
        ended now; called before its completions are reported."""
        self.step_start, self.step_end = start, self.env.now
        self.known_start, self.known_end = known_at_start, self.r.submits

    def known_now(self) -> int:
        """Requests queued at the replica as of a step launched now: back to back with the step before,
        those before that step's completions; after idling, all."""
        return self.known_end if self.step_end == self.env.now else self.r.submits

    # ---- sleep and wake ------------------------------------------------------------
    def sleep(self, timeout: float | None = None) -> Generator[Any, Any, None]:
        """Idle until :meth:`wake` (or ``timeout`` seconds, if given)."""
        self.idle = True
        self.wake_ev = self.env.event()
        yield self.wake_ev if timeout is None else self.wake_ev | self.env.timeout(timeout)
        self.idle = False

    def wake(self) -> bool:
        """Called on an arrival: wake an idle loop, or cut an interruptible run short. True if acted."""
        if self.idle and self.wake_ev is not None and not self.wake_ev.triggered:
            self.wake_ev.succeed()
            return True
        if self.interruptible:
            self.interruptible = False
            assert self.proc is not None
            self.proc.interrupt()
            return True
        return False

    # ---- timed runs ------------------------------------------------------------------
    def timed_run(self, steps: int, d0: float, slope: float,
                  interruptible: bool = True) -> Generator[Any, Any, int]:
        """Wait out ``steps`` steps of durations d0 + j·slope; if ``interruptible``, an arrival cuts the
        run after the step in progress. Returns the steps done."""
        env = self.env
        t0 = env.now
        total = run_seconds(steps, d0, slope)
        if not interruptible:
            yield env.timeout(total)
            return steps
        done = steps
        self.interruptible = True
        try:
            yield env.timeout(total)
        except simpy.Interrupt:
            elapsed = env.now - t0
            # the step in progress ends the run; an engine that schedules ahead has formed the next already
            done = min(steps, steps_within(elapsed, steps, d0, slope) + 1 + self.r.schedules_ahead)
            rest = run_seconds(done, d0, slope) - elapsed
            self.interruptible = False
            if rest > 0:
                yield env.timeout(rest)
        self.interruptible = False
        return done

    def record_run(self, t0: float, run: DecodeRun, done: int, decodes: int, running: int) -> None:
        """Log the first ``done`` steps of ``run`` (started at ``t0``, ``decodes`` sequences decoding,
        ``running`` in the batch) as one row ending now; FLOPs and bytes pro rata."""
        r, d0, slope = self.r, run.d0, run.slope
        f = done / run.steps
        c0, c1 = run.first, run.last
        r.log.add(StepRow(t0, self.env.now, r.index, done, decodes, 0, d0, d0 + slope * (done - 1),
                          (c0.flops + c1.flops) / 2 * run.steps * f, (c0.bytes + c1.bytes) / 2 * run.steps * f,
                          running, len(r.waiting), r.pool.used))
