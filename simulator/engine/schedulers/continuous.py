"""Continuous (iteration-level) batching with chunked prefill, as in vLLM and Sarathi-Serve.

Every step: running decodes take one token each; partially prefilled requests, then waiting
ones (FIFO), share the rest of the token budget. KV blocks are allocated as tokens are stored;
when a step cannot get the blocks it needs, the newest running request is preempted.
Between events (an arrival or a completion) a decode-only batch evolves deterministically, so
consecutive decode steps are advanced together as one *run* (interruptible by an arrival).
With speculative decoding each step drafts and verifies; a run then draws every member's accepted
tokens for all its steps at once (``speculative.py``). With a prefix cache, an admitted request
first takes its cached leading blocks and prefills only the rest (``prefix_cache.py``). With batch
waiting (``batch_wait.py``) or polling for requests (``recv_poll.py``) a new prompt joins later.
This module plans the steps; ``continuous_steps.py`` runs them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..batch_wait import BatchWait
from ..decode_set import decode_set_type
from ..kv import NO_HIT
from ..recv_poll import RecvPoll
from ..state import RUNNING
from .base import Cutoff, Scheduler, joined_before
from .continuous_steps import StepRunner

if TYPE_CHECKING:
    from ..replica import Replica


@dataclass(slots=True)
class StepPlan:
    """What :meth:`ContinuousScheduler._schedule` has picked so far for the next step: prefill chunks
    as (request, tokens), the token budget left, and the swap seconds the step pays first."""

    chunks: list[tuple[int, int]]
    budget: int
    swap_s: float


class ContinuousScheduler(StepRunner):
    """One scheduling loop of a replica (a replica with pipeline parallelism runs ``pp`` of them)."""

    def __init__(self, replica: "Replica") -> None:
        super().__init__(replica)
        self.loop_id = replica.itl.new_loop()
        self.dec = decode_set_type()(replica.reqs, replica.pool, replica.itl, self.loop_id)   # requests decoding
        self.prefilling: list[int] = []                    # still prefilling, in admission order
        w = replica.prefill_wait
        self.wait = BatchWait(w, replica) if w is not None else None   # batch waiting, if configured
        self.holding = False                               # new prompts are held back this step
        n = replica.recv_interval
        self.poll = RecvPoll(n) if n is not None and n > 1 else None   # takes requests in every n steps
        if self.poll is not None:
            self.cutoff = self._polled_cutoff   # type: ignore[method-assign]   # (unpolled loops: no extra call)
        self.start()

    @property
    def running(self) -> int:
        return self.dec.n + len(self.prefilling)

    # ---- the loop -------------------------------------------------------------
    def loop(self):  # SimPy generator
        r, dec, prefilling = self.r, self.dec, self.prefilling
        while True:
            if not (dec.n or prefilling or r.waiting):   # nothing running, nothing waiting
                yield from self.sleep()
                continue
            if self.poll is not None:
                self.cutoff()   # a batch forms: a poll that is due takes the inbox in
            self.holding = self.wait is not None and not prefilling and self.wait.holds(dec.n, self.cutoff())
            # decodes only: the first waiting request may not join yet and will not until the next poll,
            # or it may but does not fit
            if not prefilling and dec.n and ((self.poll is not None) if self._head_waits() else not self._can_admit()):
                if r.spec is not None:
                    done = yield from self._verify_run(self._run_cap())
                    if done:
                        continue
                else:
                    steps = self._run_length(self._run_cap())
                    if steps >= 2:
                        yield from self._decode_run(steps)
                        continue
            chunks, swap_s = self._schedule()
            if not chunks and not dec.n:
                yield from self.sleep()   # nothing fits: wait until another loop frees memory
                continue
            yield from self._mixed_step(chunks, swap_s)

    def _run_cap(self) -> int | None:
        """Most steps the next decode run may take: the admission rule's cap, while prompts are held back
        (batch waiting) the steps they may still wait, and with polling the steps until the next poll."""
        cap = self.r.admission.run_cap()
        if self.holding:
            cap = self.wait.cap(cap)   # type: ignore[union-attr]
        left = self._poll_cap()
        return cap if left is None else left if cap is None else min(cap, left)

    def _poll_cap(self) -> int | None:
        """With polling and requests waiting: the decode steps until the next poll (None: no limit)."""
        return self.poll.steps_left() if self.poll is not None and self.r.waiting else None

    def _polled_cutoff(self) -> Cutoff:
        """:meth:`Scheduler.cutoff` of a loop that polls for requests: as of the last poll (:class:`RecvPoll`)."""
        return self.poll.cutoff(Scheduler.cutoff(self), self.env.now, self.r.submits)   # type: ignore[union-attr]

    # ---- admission and memory ------------------------------------------------------
    def _can_admit(self) -> bool:
        r, n = self.r, self.dec.n
        if not r.waiting or n + len(self.prefilling) >= r.max_batch_size or self.holding:
            return False
        budget = r.max_tokens - (n * r.decode_q if r.mixed else 0)
        if budget <= 0:
            return False
        rid = r.waiting[0]
        req = r.reqs
        kv = int(req.kv[rid])
        rem = int(req.target[rid]) - kv
        hit = r.kv.lookup(rid) if kv == 0 else NO_HIT
        rem -= hit.tokens
        c = min(rem, budget) if r.chunked else rem
        if c > budget:
            return False
        return r.kv.can_admit(kv + hit.tokens + max(c, 1), hit) and r.admission.admits(rid, rem)

    def _head_waits(self) -> bool:
        """Whether the first waiting request joined the queue too late for the next step (:meth:`cutoff`)."""
        waiting = self.r.waiting
        return bool(waiting) and not joined_before(self.r.reqs, waiting[0], self.cutoff())

    def _schedule(self) -> tuple[list[tuple[int, int]], float]:
        """Allocate this step's blocks (preempting if needed) and pick prefill chunks: first the
        requests still prefilling, in admission order, then waiting ones (FIFO) while budget lasts.
        Without mixed batches (``Replica.mixed``) a step carries prefill chunks or decodes, not both:
        prefills first, with the whole token budget, and decodes only when no prefill fits."""
        r = self.r
        q = r.decode_q
        if not r.mixed:
            plan = self._fill(StepPlan([], r.max_tokens, 0.0), r.preemptions)
            if plan.chunks or not self.dec.n:
                return plan.chunks, plan.swap_s
            return [], plan.swap_s + r.admission.make_room(self, q)
        preempted = r.preemptions
        swap_s = r.admission.make_room(self, q)
        plan = self._fill(StepPlan([], r.max_tokens - self.dec.n * q, swap_s), preempted)
        return plan.chunks, plan.swap_s

    def _fill(self, plan: StepPlan, preempted: int) -> StepPlan:
        """Add the prefill chunks of ``plan``: requests still prefilling, then new admissions unless
        this step preempted (``preempted``: the replica's preemption count before it) and the engine
        then holds them back."""
        r = self.r
        hold_back = self._continue_prefills(plan)
        if not r.admission.admit_after_preemption and r.preemptions > preempted:
            hold_back = True
        if not (self.stalled or hold_back or self.holding):
            self._admit_waiting(plan)
        return plan

    def _continue_prefills(self, plan: StepPlan) -> bool:
        """Give the requests still prefilling their next chunks and blocks (evicting others if short);
        sets ``stalled``. Returns whether new admissions must wait this step (blocks freed by a request
        that preempted itself go to stalled stages first)."""
        r, req, kvm, adm = self.r, self.r.reqs, self.r.kv, self.r.admission
        stall = hold_back = False
        for rid in list(self.prefilling):
            if plan.budget <= 0:
                break
            rem = int(req.target[rid] - req.kv[rid])
            c = min(rem, plan.budget) if r.chunked else rem
            if c > plan.budget:
                break
            while rid in self.prefilling and not kvm.allocate(rid, int(req.kv[rid]) + c):
                stall = self._must_wait(rid)
                if stall:
                    break
                plan.swap_s += adm.evict(self)
            if stall:
                break
            if rid in self.prefilling:
                plan.chunks.append((rid, c))
                plan.budget -= c
            else:   # it preempted itself: the blocks it freed go to stalled stages before new admissions
                hold_back = any(x.stalled for x in r.loops)
        self.stalled = stall
        return hold_back

    def _admit_waiting(self, plan: StepPlan) -> None:
        """Admit waiting requests (FIFO) while the budget, the batch size and the blocks allow."""
        r, req = self.r, self.r.reqs
        cut = self.cutoff()
        while r.waiting and plan.budget > 0 and self.running < r.max_batch_size:
            rid = r.waiting[0]
            if not joined_before(req, rid, cut):
                break
            kv0 = int(req.kv[rid])
            rem = int(req.target[rid] - kv0)
            if rem <= 0:  # KV already complete (swapped out, or sent by a prefill replica): decode next step
                if not self._admit_decoding(rid, kv0, plan):
                    break
            elif not self._admit_prefill(rid, kv0, rem, plan):
                break

    def _admit_decoding(self, rid: int, kv0: int, plan: StepPlan) -> bool:
        """Admit waiting ``rid`` whose KV is complete straight into the decode set (swapping it in if
        on the host); False if it does not fit."""
        r, req, q = self.r, self.r.reqs, self.r.decode_q
        if not r.admission.admits(rid, 0) or not r.kv.allocate(rid, kv0 + q):
            return False
        if req.on_host[rid]:
            plan.swap_s += r.swap_seconds(kv0)
            req.on_host[rid] = False
        if not r.admit_seq[rid]:
            r.admit_seq[rid] = r.next_seq()
        r.waiting.popleft()
        req.status[rid] = RUNNING
        self.dec.add(np.array([rid], dtype=np.int64))
        plan.budget -= q
        return True

    def _admit_prefill(self, rid: int, kv0: int, rem: int, plan: StepPlan) -> bool:
        """Admit waiting ``rid`` with its first chunk (after its cached prefix, if any); False if it
        does not fit."""
        r, req, kvm = self.r, self.r.reqs, self.r.kv
        hit = kvm.acquire_prefix(rid) if kv0 == 0 else 0
        if hit:
            kv0, rem = hit, rem - hit
        budget = plan.budget
        c = min(rem, budget) if r.chunked else rem
        alone = not plan.chunks and not (self.dec.n and r.mixed)   # a recompute may outgrow the budget: run it alone
        if (c > budget and not alone) or not r.admission.admits(rid, rem) or not kvm.allocate(rid, kv0 + c):
            kvm.undo_prefix(rid, hit)
            return False
        if req.on_host[rid]:
            plan.swap_s += r.swap_seconds(kv0)
            req.on_host[rid] = False
        if hit:
            req.kv[rid] = hit
            req.cached[rid] += hit
            if math.isnan(req.first_sched[rid]):
                req.first_cached[rid] = hit
        r.waiting.popleft()
        req.status[rid] = RUNNING
        r.admit_seq[rid] = r.next_seq()
        if math.isnan(req.first_sched[rid]):
            req.first_sched[rid] = self.env.now
        self.prefilling.append(rid)
        plan.chunks.append((rid, c))
        plan.budget = budget - c
        if self.wait is not None:
            self.wait.released()
        return True

    def newest_seq(self) -> int:
        """Admission number of this loop's most recently admitted running request (0: none)."""
        seq = self.r.admit_seq
        newest = max((int(seq[x]) for x in self.prefilling), default=0)
        return max(newest, int(seq[self.dec.ids].max())) if self.dec.n else newest

    def _must_wait(self, rid: int) -> bool:
        """Whether prefill ``rid``, short of blocks, waits instead of preempting: it is this loop's
        newest request (so it would preempt itself) and another stage of the replica runs a newer one.
        As with a single scheduler, only the replica's newest request gives way; pipeline stages that
        each preempted their own older prefill would take turns freeing blocks and finish none."""
        mine = int(self.r.admit_seq[rid])
        return mine >= self.newest_seq() and self.r.newest_seq_besides(self) > mine

    def preempt_newest(self) -> float:
        """Preempt the most recently admitted running request; returns swap-out seconds."""
        r = self.r
        seq = r.admit_seq
        best_pre = max(self.prefilling, key=lambda x: seq[x]) if self.prefilling else None
        i_dec = int(np.argmax(seq[self.dec.ids])) if self.dec.n else -1
        if best_pre is not None and (i_dec < 0 or seq[best_pre] > seq[self.dec.ids[i_dec]]):
            self.prefilling.remove(best_pre)
            return r.preempt(best_pre)
        mask = np.zeros(self.dec.n, dtype=bool)
        mask[i_dec] = True
        victim = int(self.dec.remove(mask)[0])
        return r.preempt(victim)

    def _run_length(self, cap: int | None = None) -> int:
        """Decode steps until the first completion (at most ``cap``), limited by free KV blocks (0 if
        none fit). The blocks of a run of 2 or more steps are taken here, when it is planned: other
        scheduler loops of this replica (pipeline stages) share the pool and may allocate while it is
        in flight."""
        d = self.dec
        j = d.left_min if cap is None else min(d.left_min, cap)
        if d.reserve(j):
            return j
        free = self.r.pool.free
        lo, hi = 0, j
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if d.extra_blocks(mid) <= free:
                lo = mid
            else:
                hi = mid - 1
        if lo >= 2 and not d.reserve(lo):
            raise RuntimeError("decode run planned without the KV blocks it needs")
        return lo
