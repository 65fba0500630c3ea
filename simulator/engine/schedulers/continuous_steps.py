"""How a continuous-batching loop runs the steps it planned: decode runs, speculative verify runs and
single steps that may carry prefill chunks; each is priced, waited out on the clock, logged, and
its finished requests reported. :class:`ContinuousScheduler` (``continuous.py``) plans them."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ...perf.step import BatchShape, StepCost
from ..step_log import StepRow
from ..state import DONE
from .base import DecodeRun, Scheduler, run_seconds

if TYPE_CHECKING:
    from ..batch_wait import BatchWait
    from ..decode_set import PyDecodeSet
    from ..recv_poll import RecvPoll


class StepRunner(Scheduler):
    """The step-running half of a continuous loop; the planning half sets these attributes."""

    dec: "PyDecodeSet"                 # requests decoding
    prefilling: list[int]            # still prefilling, in admission order
    loop_id: int
    wait: "BatchWait | None"
    holding: bool
    poll: "RecvPoll | None"

    # ---- executing steps -----------------------------------------------------------
    def _decode_cost(self, extra: int) -> StepCost:
        """The price of a decode-only step ``extra`` steps ahead."""
        dec = self.dec
        s, win = dec.ctx_sums(extra, self.r.window)
        # BatchShape.decode_total(dec.n, s, win)'s fields as a plain tuple: no shape built on this hot
        # path (tests/engine/schedulers/test_continuous.py pins the two equal)
        return self.r.sm.cost((0, 0, 0.0, 0.0, dec.n, s, None, None, win, 1))

    def _decode_run(self, steps: int):
        run = DecodeRun(steps, self._decode_cost(0), self._decode_cost(steps - 1))   # blocks: _run_length
        d0, slope = run.d0, run.slope
        t0 = self.env.now
        done = yield from self.timed_run(steps, d0, slope)
        self.stepped(t0 + run_seconds(done - 1, d0, slope), self.r.submits)
        self._count_decode_steps(done)
        n = self.dec.n
        self.dec.advance(done, self.env.now, t0 + d0, d0 + slope * (done - 1))
        self._close_run(t0, run, done, n)

    def _verify_run(self, cap: int | None):
        """Speculative decoding: a run of verify steps until the first completion (or until free blocks
        run out, or ``cap`` steps: :meth:`_run_cap`), the accepted tokens drawn for all its steps at once;
        False if under 2 steps. Its steps count as decode steps for batch waiting, polling and admission."""
        r, dec = self.r, self.dec
        spec = r.spec
        assert spec is not None
        plan = spec.plan_run(dec, r.pool.free, r.pool.block_size, cap)
        if plan is None:
            return False
        if not dec.hold(plan.blocks):   # blocks for the whole run, taken now
            raise RuntimeError("verify run planned without the KV blocks it needs")
        run = DecodeRun(plan.steps, spec.verify_cost(r.sm, dec, plan.before[0], r.window),
                        spec.verify_cost(r.sm, dec, plan.before[plan.steps - 1], r.window))
        d0, slope = run.d0, run.slope
        t0, n = self.env.now, len(dec)
        done = yield from self.timed_run(plan.steps, d0, slope)
        self.stepped(t0 + run_seconds(done - 1, d0, slope), r.submits)
        self._count_decode_steps(done)
        dec.advance_tokens(spec.accepted(plan, done), self.env.now, t0 + d0, d0 + slope * (done - 1))
        self._close_run(t0, run, done, n)
        return True

    def _count_decode_steps(self, steps: int) -> None:
        """A run of ``steps`` decode (or verify) steps ended: batch waiting, polling and the admission rule
        count them (a single step does the same inline in :meth:`_mixed_step`, the hot path)."""
        if self.holding:
            self.wait.held(steps)   # type: ignore[union-attr]
        if self.poll is not None:
            self.poll.stepped(steps, False)
        self.r.admission.stepped(steps)

    def _close_run(self, t0: float, run: DecodeRun, done: int, n: int) -> None:
        """A decode run of ``n`` sequences ended after ``done`` steps: log it, note its token gaps,
        finish the requests that got their last token."""
        self.record_run(t0, run, done, n, n)
        self.r.itl.row(self.loop_id, t0, run.d0, run.slope, done)
        self.finish_done()

    def _mixed_step(self, chunks: list[tuple[int, int]], swap_s: float):
        r, env, req, dec = self.r, self.env, self.r.reqs, self.dec
        kv_col = req.kv
        w = r.window
        n = dec.n if r.mixed or not chunks else 0     # decodes in this step
        q = r.decode_q
        ctx, ctx_w = dec.ctx_sums(0, w, q) if n else (0.0, None)
        shape = BatchShape.step([(int(kv_col[rid]), c) for rid, c in chunks], n, ctx, ctx_w, q, w)
        pt = shape.prefill_tokens
        wall, flops, nbytes = r.sm.cost(shape)
        if r.spec is not None:
            ew, ef, eb = r.spec.extra_cost(shape)
            wall, flops, nbytes = wall + ew, flops + ef, nbytes + eb
        dt = wall + swap_s
        t0 = env.now
        known = self.known_now()
        yield env.timeout(dt)
        t1 = env.now
        self.stepped(t0, known)
        if self.holding:
            self.wait.held(1)   # type: ignore[union-attr]
        if self.poll is not None:
            self.poll.stepped(1, bool(chunks))
        if n:
            if r.spec is not None:
                dec.advance_tokens(r.spec.one_step(dec), t1, t1, dt)
            else:
                dec.advance(1, t1, t1, 0.0)
            r.admission.stepped(1)
        moved = []
        target, last_token = req.target, req.last_token
        for rid, c in chunks:
            kv = int(kv_col[rid]) + c
            kv_col[rid] = kv
            req.prefill_computed[rid] += c
            r.kv.computed(rid, kv)
            if kv >= target[rid]:   # its last prompt token: the step also gives its next token
                last = float(last_token[rid])
                if not math.isnan(last):     # a recomputed request: the gap since its previous token
                    gap = t1 - last
                    req.max_itl[rid] = max(req.max_itl[rid], gap)
                    r.itl.gaps(np.array([rid]), gap, 0.0, 1)
                req.generated[rid] += 1
                last_token[rid] = t1
                if math.isnan(req.first_token[rid]):
                    req.first_token[rid] = t1
                moved.append(rid)
        r.log.add(StepRow(t0, t1, r.index, 1, n, pt, dt, dt, flops, nbytes, self.running, len(r.waiting), r.pool.used))
        r.itl.step(self.loop_id, t0, dt, (dec.ids, dec.last) if n < dec.n else None)
        if moved:
            for rid in moved:
                self.prefilling.remove(rid)
            ids = np.array(moved, dtype=np.int64)
            if r.role == "prefill":
                r.handoff(ids)
            else:
                dec.add(ids)
        self.finish_done()

    def finish_done(self) -> None:
        d = self.dec
        if d.left_min <= 0 and d.n:
            ids = d.remove_finished()
            req = self.r.reqs
            req.finish[ids] = req.last_token[ids]
            req.status[ids] = DONE
            self.r.finished(ids)
