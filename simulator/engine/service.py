"""In front of the GPUs: service-level response caches and a model cascade.

Caches: an exact-match cache (same prompt) and a semantic cache (a similar prompt, found by an
embedding lookup), looked up in that order. Each lookup costs ``lookup_s``; a hit (drawn with the
tier's ``hit_rate``) returns the stored answer at once, never touching a GPU; a miss goes on after
the lookups. Cascade: requests picked by ``route`` (a random share, or prompts up to a length) run on
a small model first; an ``escalate`` share of its answers (and any request it cannot hold) then run
on the large model, so their latencies add. The user sees the last model's answer.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from ..config.scenario import Scenario
from .state import DONE, REJECTED, Requests
from .system import ServingSystem

EXACT, SEMANTIC, SMALL, ESCALATED = 1, 2, 3, 4   # state.SERVED_BY codes
_COPY = ("first_sched", "first_token", "last_token", "finish", "max_itl", "generated", "prefill_computed",
         "preemptions", "status", "reject_reason", "cached", "first_cached", "replica")


class FrontDoor:
    """Decides, per arriving request, cache hit, small model or large model."""

    def __init__(self, env: simpy.Environment, s: Scenario, reqs: Requests, done: Callable[[np.ndarray], None]) -> None:
        self.env, self.reqs, self.done = env, reqs, done
        d = s.deployment
        n = reqs.n
        rng = np.random.default_rng([s.seed, 0xCAC4E])
        sc = d.service_cache
        self.exact = sc.exact if sc is not None else None
        self.semantic = sc.semantic if sc is not None else None
        self.exact_hit = rng.random(n) < (self.exact.hit_rate if self.exact else 0.0)
        self.semantic_hit = rng.random(n) < (self.semantic.hit_rate if self.semantic else 0.0)
        c = d.cascade
        self.to_small = np.zeros(n, dtype=bool)
        self.escalate = np.zeros(n, dtype=bool)
        if c is not None:
            u = rng.random(n)
            self.to_small = u < c.route.share if c.route.share is not None else reqs.prompt <= c.route.max_prompt_tokens
            self.escalate = rng.random(n) < c.escalate
        self.main: ServingSystem | None = None
        self.small: ServingSystem | None = None
        self.small_reqs: Requests | None = None

    def arrive(self, rid: int) -> None:
        """Request ``rid`` arrives now."""
        delay = 0.0
        for tier, hits, code in ((self.exact, self.exact_hit, EXACT), (self.semantic, self.semantic_hit, SEMANTIC)):
            if tier is None:
                continue
            delay += tier.lookup_s
            if hits[rid]:
                self._later(delay, lambda rid=rid, code=code: self._hit(rid, code))
                return
        self._later(delay, lambda rid=rid: self._route(rid))

    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        if delay > 0:
            self.env.timeout(delay).callbacks.append(lambda _ev: fn())
        else:
            fn()

    def _route(self, rid: int) -> None:
        if self.small is not None and self.to_small[rid]:
            self.small.admit(rid)
        else:
            assert self.main is not None
            self.main.admit(rid)

    def _hit(self, rid: int, code: int) -> None:
        r, t = self.reqs, self.env.now
        r.first_sched[rid] = r.arrival[rid]
        r.first_token[rid] = r.last_token[rid] = r.finish[rid] = t
        r.generated[rid] = r.output[rid]
        r.status[rid] = DONE
        r.served_by[rid] = code
        self.done(np.array([rid], dtype=np.int64))

    def small_done(self, ids: np.ndarray) -> None:
        """Requests the small model finished (or could not hold): answer, or escalate to the large model."""
        sr, r = self.small_reqs, self.reqs
        assert sr is not None and self.main is not None
        final = []
        for rid in ids.tolist():
            if self.escalate[rid] or sr.status[rid] == REJECTED:
                r.first_sched[rid] = sr.first_sched[rid]
                r.prefill_computed[rid] = sr.prefill_computed[rid]
                r.cached[rid], r.first_cached[rid] = sr.cached[rid], sr.first_cached[rid]
                r.preemptions[rid] = sr.preemptions[rid]
                r.served_by[rid] = ESCALATED
                self.main.admit(rid)
            else:
                for col in _COPY:
                    getattr(r, col)[rid] = getattr(sr, col)[rid]
                r.served_by[rid] = SMALL
                final.append(rid)
        if final:
            self.done(np.asarray(final, dtype=np.int64))

    def stats(self) -> dict[str, Any]:
        sb = self.reqs.served_by
        out: dict[str, Any] = {}
        if self.exact is not None or self.semantic is not None:
            hits = int(((sb == EXACT) | (sb == SEMANTIC)).sum())
            out["service_cache"] = {"exact_hits": int((sb == EXACT).sum()), "semantic_hits": int((sb == SEMANTIC).sum()),
                                    "hit_rate": hits / max(self.reqs.n, 1)}
        if self.small is not None:
            out["cascade"] = {"small_only": int((sb == SMALL).sum()), "escalated": int((sb == ESCALATED).sum()),
                              "large_only": int((sb == 0).sum())}
        return out
