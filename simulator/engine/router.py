"""Routing policies: which replica an arriving request joins.

The same choices as :class:`~.router_reference.ReferenceRouter` (ties included), from indexes
(:mod:`.router_index`) instead of a scan: round robin and random cost O(1), least outstanding
O(log replicas), prefix-aware O(log replicas) plus the replicas that share a partly cached prefix.
Least KV use and choices among a subset of replicas (``max_outstanding_per_replica``) scan the
candidates, as the reference does: KV use changes at every step of every replica."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .router_index import OutstandingHeap, PrefixIndex
from .router_reference import POLICIES, ReferenceRouter

if TYPE_CHECKING:
    from .replica import Replica


class Router(ReferenceRouter):
    """Chooses a replica for each request; deterministic given the seed."""

    def __init__(self, policy: str, replicas: Sequence["Replica"], seed: int = 0) -> None:
        super().__init__(policy, replicas, seed)
        reps = self.replicas
        self._heap = OutstandingHeap(reps) if policy in ("least_outstanding", "prefix_aware") and len(reps) > 1 else None
        self._prefix: PrefixIndex | None = None
        if policy == "prefix_aware" and len(reps) > 1:
            caches = [r.cache for r in reps]
            if all(c is not None for c in caches) and len({c.bs for c in caches}) == 1:  # type: ignore[union-attr]
                self._prefix = PrefixIndex(reps)

    def choose(self, rid: int, candidates: Sequence["Replica"] | None = None) -> "Replica":
        """The replica request ``rid`` goes to (among ``candidates`` if given)."""
        heap = self._heap
        if candidates is not None or heap is None:
            return super().choose(rid, candidates)
        reps = self.replicas
        if self.policy == "least_outstanding":
            return reps[heap.best()]
        if self._prefix is None:
            return super().choose(rid)
        cache = reps[0].cache
        assert cache is not None
        keys = cache.keys(rid)
        best = self._prefix.longest(keys[: cache._limit(rid)])
        if best is None:                # every replica caches the same leading run: least outstanding
            return reps[heap.best()]
        return reps[min(best, key=lambda p: (reps[p].outstanding, reps[p].index))]


__all__ = ["POLICIES", "Router", "ReferenceRouter"]
