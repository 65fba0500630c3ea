"""Static and dynamic batching: a batch is formed, then runs to completion (padded).

static: start when ``max_batch_size`` requests wait, or when no more will arrive.
dynamic: start when the batch is full or ``timeout_s`` after its first request arrived.
The batch is padded to its longest prompt and decodes until its longest output is done, as
``generate()``-style servers do; each request's tokens stream out as they are produced.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...perf.step import BatchShape
from ..kvcache import blocks_for
from ..state import DONE, RUNNING
from ..step_log import StepRow
from .base import DecodeRun, Scheduler

if TYPE_CHECKING:
    from ..replica import Replica


class StaticScheduler(Scheduler):
    """The single batching loop of a static/dynamic replica (never stalled: one loop per replica)."""

    def __init__(self, replica: "Replica") -> None:
        super().__init__(replica)
        self.batch_size = 0
        self.start()

    @property
    def running(self) -> int:
        return self.batch_size

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

    def loop(self):
        while True:
            wait = self._ready()
            if wait is None or wait > 0:
                yield from self.sleep(wait)
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
            per_seq = int(blocks_for(p + o, r.pool.block_size))
            if per_seq * (len(ids) + 1) > r.pool.free:
                break
            pmax, omax = p, o
            ids.append(r.waiting.popleft())
        return np.asarray(ids, dtype=np.int64)

    def _run_batch(self):
        r, env, req = self.r, self.env, self.r.reqs
        ids = self._take()
        if not len(ids):  # the head request alone cannot fit while others hold memory
            yield from self.sleep()
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
        r.log.add(StepRow(t0, t1, r.index, 1, 0, b * pmax, dt, dt, flops, nbytes, b, len(r.waiting), r.pool.used))
        steps = omax - 1
        ends = np.full(b, t1)
        if steps >= 1:
            run = DecodeRun(steps, r.sm.price(BatchShape.decode(b, pmax, r.window)),
                            r.sm.price(BatchShape.decode(b, pmax + steps - 1, r.window)))
            d0, slope = run.d0, run.slope
            k = req.output[ids] - 1
            ends = t1 + k * d0 + slope * k * (k - 1) / 2
            yield from self.timed_run(steps, d0, slope, interruptible=False)
            self.record_run(t1, run, steps, b, b)
            req.max_itl[ids] = np.where(k > 0, d0 + slope * np.maximum(k - 1, 0), 0.0)
            r.itl.gaps(ids, d0, slope, k)
        req.generated[ids] = req.output[ids]
        req.kv[ids] = req.prompt[ids] + req.output[ids] - 1
        req.last_token[ids] = ends
        req.finish[ids] = ends
        req.status[ids] = DONE
        self.batch_size = 0
        r.finished(ids)
