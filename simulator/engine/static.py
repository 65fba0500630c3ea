"""Static and dynamic batching: a batch is formed, then runs to completion (padded).

static: start when ``max_batch_size`` requests wait, or when no more will arrive.
dynamic: start when the batch is full or ``timeout_s`` after its first request arrived.
The batch is padded to its longest prompt and decodes until its longest output is done, as
``generate()``-style servers do; each request's tokens stream out as they are produced.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import simpy

from ..perf.step import BatchShape
from .state import DONE, RUNNING

if TYPE_CHECKING:
    from .replica import Replica


class StaticScheduler:
    """The single batching loop of a static/dynamic replica."""

    def __init__(self, replica: "Replica") -> None:
        self.r = replica
        self.env: simpy.Environment = replica.env
        self.idle = False
        self.interruptible = False
        self.stalled = False   # never: one loop per replica
        self.wake_ev: simpy.Event | None = None
        self.batch_size = 0
        self.proc = self.env.process(self.loop())

    @property
    def running(self) -> int:
        return self.batch_size

    def wake(self) -> bool:
        if self.idle and self.wake_ev is not None and not self.wake_ev.triggered:
            self.wake_ev.succeed()
            return True
        return False

    def _ready(self) -> float | None:
        """0 if a batch should start now, seconds to wait for the dynamic timeout, None to wait."""
        r = self.r
        if not r.waiting:
            return None
        if len(r.waiting) >= r.max_batch_size or r.arrivals_done:
            return 0.0
        if r.policy == "dynamic":
            first = r.reqs.arrival[r.waiting[0]]
            return max(0.0, first + r.timeout_s - self.env.now)
        return None

    def loop(self):  # noqa: ANN201
        r, env = self.r, self.env
        while True:
            wait = self._ready()
            if wait is None or wait > 0:
                self.idle = True
                self.wake_ev = env.event()
                if wait is None:
                    yield self.wake_ev
                else:
                    yield self.wake_ev | env.timeout(wait)
                self.idle = False
                continue
            yield from self._run_batch()

    def _take(self) -> np.ndarray:
        """Requests of the next batch, as many as fit in the KV cache padded to the batch's maxima."""
        r, req = self.r, self.r.reqs
        ids: list[int] = []
        pmax = omax = 0
        while r.waiting and len(ids) < r.max_batch_size:
            rid = r.waiting[0]
            p, o = max(pmax, int(req.prompt[rid])), max(omax, int(req.output[rid]))
            per_seq = -(-(p + o) // r.pool.block_size)
            if per_seq * (len(ids) + 1) > r.pool.free:
                break
            pmax, omax = p, o
            ids.append(r.waiting.popleft())
        return np.asarray(ids, dtype=np.int64)

    def _run_batch(self):  # noqa: ANN202
        r, env, req = self.r, self.env, self.r.reqs
        ids = self._take()
        if not len(ids):  # the head request alone cannot fit while others hold memory
            self.idle = True
            self.wake_ev = env.event()
            yield self.wake_ev
            self.idle = False
            return
        b = len(ids)
        self.batch_size = b
        pmax, omax = int(req.prompt[ids].max()), int(req.output[ids].max())
        for rid in ids:
            r.pool.grow(int(rid), pmax + omax)
        req.status[ids] = RUNNING
        t0 = env.now
        req.first_sched[ids] = t0
        dt, flops, nbytes = r.sm.price(BatchShape.prefill(b, pmax, 0, r.window))
        yield env.timeout(dt)
        t1 = env.now
        req.first_token[ids] = t1
        req.prefill_computed[ids] += req.prompt[ids]
        r.log.add(t0, t1, r.index, 1, 0, b * pmax, dt, dt, flops, nbytes, b,
                  len(r.waiting), r.pool.used)
        steps = omax - 1
        ends = np.full(b, t1)
        if steps >= 1:
            d0, f0, b0 = r.sm.price(BatchShape.decode(b, pmax, r.window))
            d1, f1, b1 = r.sm.price(BatchShape.decode(b, pmax + steps - 1, r.window))
            slope = (d1 - d0) / (steps - 1) if steps > 1 else 0.0
            k = req.output[ids] - 1
            ends = t1 + k * d0 + slope * k * (k - 1) / 2
            total = steps * d0 + slope * steps * (steps - 1) / 2
            yield env.timeout(total)
            r.log.add(t1, env.now, r.index, steps, b, 0, d0, d0 + slope * (steps - 1),
                      (f0 + f1) / 2 * steps, (b0 + b1) / 2 * steps, b,
                      len(r.waiting), r.pool.used)
            req.max_itl[ids] = np.where(k > 0, d0 + slope * np.maximum(k - 1, 0), 0.0)
            r.itl.gaps(ids, d0, slope, k)
        req.generated[ids] = req.output[ids]
        req.kv[ids] = req.prompt[ids] + req.output[ids] - 1
        req.last_token[ids] = ends
        req.finish[ids] = ends
        req.status[ids] = DONE
        self.batch_size = 0
        r.finished(ids)
