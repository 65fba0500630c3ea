"""Admission and eviction rules of the engines' schedulers (``EngineProfile.scheduler``).

The scheduler loop (``continuous.py``) asks its replica's rule whether a waiting request may start
(:meth:`Greedy.admits`), tells it how many decode steps ran (:meth:`Greedy.stepped`), asks how long
a decode run may be planned (:meth:`Greedy.run_cap`) and lets it free room when the decoding batch
is short of KV blocks (:meth:`Greedy.make_room`). The KV arithmetic of each rule lives here, over
the block pool's and the decode set's counters.

- :class:`Greedy` (generic scheduler, vLLM): a request starts when the blocks for its next chunk are
  free, which the scheduler's allocation already tests; a shortage preempts the newest request.
- :class:`Reserve` (TensorRT-LLM GUARANTEED_NO_EVICT): a request starts only if the blocks of its
  whole prompt + max output fit beside the blocks the running requests still need to finish; the
  running requests can then always grow, so nothing is ever preempted.
- :class:`TokenRatio` (SGLang): a request starts while the free KV tokens exceed its uncached prompt
  + its (clipped) max output + the running requests' remaining prompts + ``ratio`` x their remaining
  (clipped) outputs; the ratio decays per decode step and is reset upward after a retraction, which
  evicts the decodes with the fewest generated tokens until every remaining one has KV for
  ``retract_steps`` more steps.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..catalog.engine_scheduler import EngineScheduler
from .kvcache import blocks_for

if TYPE_CHECKING:
    from .schedulers.continuous import ContinuousScheduler
    from .replica import Replica

#: Longest decode run planned while SGLang's ratio still decays and requests wait (steps): the run
#: ends early so that admission is asked again as the reservation shrinks.
RATIO_RUN_CAP = 32


class Greedy:
    """The generic rule (and vLLM's): the scheduler's block allocation is the only test."""

    def __init__(self, replica: "Replica", rules: EngineScheduler | None) -> None:
        self.r = replica
        self.rules = rules
        self.admit_after_preemption = rules.admit_after_preemption if rules is not None else True
        self.fewest_first = rules is not None and rules.victim == "fewest_generated"

    def admits(self, rid: int, uncached: int) -> bool:
        """Whether waiting request ``rid``, with ``uncached`` prompt tokens still to compute, may start."""
        return True

    def stepped(self, steps: int) -> None:
        """``steps`` decode steps ran."""

    def run_cap(self) -> int | None:
        """Most decode steps a run may be planned for (None: until the first completion)."""
        return None

    def make_room(self, loop: "ContinuousScheduler", q: int) -> float:
        """The decoding batch of ``loop`` cannot get its blocks for ``q`` tokens each: evict until it
        can. Returns swap-out seconds."""
        swap_s = 0.0
        while loop.dec.n and not loop.dec.reserve(q):
            swap_s += self.evict(loop)
        return swap_s

    def evict(self, loop: "ContinuousScheduler") -> float:
        """Preempt one running request of ``loop`` by the engine's victim rule; swap-out seconds."""
        if self.fewest_first and loop.dec.n:
            return evict_fewest_generated(loop)
        return loop.preempt_newest()

    # ---- what the running requests of the replica hold and will need -------------------------
    def running(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(ids decoding, ids prefilling, blocks the decoding ones hold) over the replica's loops."""
        loops = self.r.loops
        dec = [x.dec.ids for x in loops if x.dec.n]
        pre = [rid for x in loops for rid in x.prefilling]
        ids = np.concatenate(dec) if dec else np.zeros(0, dtype=np.int64)
        return ids, np.array(pre, dtype=np.int64), sum(x.dec.held_sum for x in loops)


class Reserve(Greedy):
    """TensorRT-LLM's GUARANTEED_NO_EVICT capacity policy (see the module docstring)."""

    def final_blocks(self, ids: np.ndarray | int) -> np.ndarray | int:
        """Blocks a request holds at its end: prompt + max output (+ the speculative look-ahead)."""
        r = self.r
        out = 1 if r.role == "prefill" else r.reqs.output[ids]
        return blocks_for(r.reqs.prompt[ids] + out + (r.decode_q - 1), r.pool.block_size)

    def admits(self, rid: int, uncached: int) -> bool:
        pool = self.r.pool
        dec, pre, dec_held = self.running()
        if not len(dec) and not len(pre):
            return True   # alone it fits: the router admitted only requests whose whole KV fits
        growth = int(np.sum(self.final_blocks(dec))) - dec_held
        if len(pre):
            growth += int(np.sum(self.final_blocks(pre) - pool.held[pre]))
        need = int(self.final_blocks(rid)) - int(pool.held[rid])
        return need <= pool.free - growth


class TokenRatio(Greedy):
    """SGLang's PrefillAdder and retract_decode (see the module docstring)."""

    def __init__(self, replica: "Replica", rules: EngineScheduler) -> None:
        super().__init__(replica, rules)
        cfg = rules.new_token_ratio
        assert cfg is not None
        self.cfg = cfg
        self.ratio = cfg.init
        self.decay = (cfg.init - cfg.min) / cfg.decay_steps
        self.retractions = 0

    def admits(self, rid: int, uncached: int) -> bool:
        r, clip = self.r, self.cfg.clip_max_new_tokens
        req = r.reqs
        dec, pre, _ = self.running()
        if not len(dec) and not len(pre):
            return True   # alone it fits: the router admitted only requests whose whole KV fits
        left = np.concatenate([x.dec.left() for x in r.loops if x.dec.n]) if len(dec) else np.zeros(0, np.int64)
        reserved = self.ratio * float(np.minimum(left, clip).sum())
        if len(pre):
            reserved += float((req.target[pre] - req.kv[pre]).sum())
            reserved += self.ratio * float(np.minimum(req.output[pre] - req.generated[pre], clip).sum())
        need = uncached + min(int(req.output[rid] - req.generated[rid]), clip)
        return need < r.pool.free * r.pool.block_size - reserved

    def stepped(self, steps: int) -> None:
        self.ratio = max(self.ratio - steps * self.decay, self.cfg.min)

    def run_cap(self) -> int | None:
        return RATIO_RUN_CAP if self.r.waiting and self.ratio > self.cfg.min else None

    def make_room(self, loop: "ContinuousScheduler", q: int) -> float:
        dec, pool = loop.dec, self.r.pool
        if dec.reserve(q):
            return 0.0
        swap_s = 0.0
        steps = self.cfg.retract_steps
        while dec.n > 1 and dec.extra_blocks(steps) > pool.free:
            swap_s += evict_fewest_generated(loop)
        self.retractions += 1
        if dec.n:
            gen = int((dec.kv + dec.off).sum())
            total = int(self.r.reqs.output[dec.ids].sum())
            self.ratio = min(1.0, (gen + steps * dec.n) / max(total, 1))
        return swap_s + super().make_room(loop, q)


def evict_fewest_generated(loop: "ContinuousScheduler") -> float:
    """Preempt the decoding request with the fewest generated tokens (longest prompt among equals)."""
    dec, r = loop.dec, loop.r
    gen = dec.kv + dec.off
    prompt = r.reqs.prompt[dec.ids]
    i = int(np.lexsort((-prompt, gen))[0])
    mask = np.zeros(dec.n, dtype=bool)
    mask[i] = True
    victim = int(dec.remove(mask)[0])
    return r.preempt(victim)


def admission_rule(replica: "Replica", rules: EngineScheduler | None) -> Greedy:
    """The rule object of an engine's scheduler block (None: the generic scheduler)."""
    if rules is None or rules.admission == "greedy":
        return Greedy(replica, rules)
    if rules.admission == "reserve":
        return Reserve(replica, rules)
    return TokenRatio(replica, rules)
