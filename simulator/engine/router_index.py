"""Indexes the routers keep up to date as replicas change, so that a choice costs O(log replicas).

:class:`OutstandingHeap` orders replicas by (outstanding requests, index): a lazy heap that gets a
new entry whenever a replica's count changes; an entry whose count is no longer the replica's is
dropped when it reaches the top. :class:`PrefixIndex` maps each cached block key to the replicas
whose prefix cache holds it (kept by :class:`~.prefix_cache.PrefixCache` as entries are created
and evicted)."""
from __future__ import annotations

from collections.abc import Sequence
from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .replica import Replica


class WatchedLoad:
    """An outstanding-request count that tells the heaps watching it whenever it changes (replicas,
    and the stand-ins a sharded run's router sees)."""

    _outstanding: int
    _load_watchers: list[tuple["OutstandingHeap", int]]

    @property
    def outstanding(self) -> int:
        """Requests routed here and not yet finished (or handed to a decode replica)."""
        return self._outstanding

    @outstanding.setter
    def outstanding(self, value: int) -> None:
        self._outstanding = value
        for heap, pos in self._load_watchers:
            heap.changed(pos)

    def watch_load(self, heap: "OutstandingHeap", pos: int) -> None:
        """Tell ``heap`` (as replica ``pos``) whenever :attr:`outstanding` changes."""
        self._load_watchers.append((heap, pos))


class OutstandingHeap:
    """The replica with the fewest outstanding requests (lowest index among ties) in amortised O(log n)."""

    def __init__(self, replicas: Sequence["Replica"]) -> None:
        self.reps = list(replicas)
        self.cap = 4 * len(self.reps) + 64   # stale entries allowed before a rebuild
        self._rebuild()
        for pos, r in enumerate(self.reps):
            r.watch_load(self, pos)

    def _rebuild(self) -> None:
        self.heap = [(r.outstanding, r.index, pos) for pos, r in enumerate(self.reps)]
        heapify(self.heap)

    def changed(self, pos: int) -> None:
        """Replica ``pos`` (its position in the router's list) has a new outstanding count."""
        r = self.reps[pos]
        heappush(self.heap, (r.outstanding, r.index, pos))
        if len(self.heap) > self.cap:
            self._rebuild()

    def best(self) -> int:
        """Position of the replica with the least (outstanding, index)."""
        heap, reps = self.heap, self.reps
        while True:
            o, _, pos = heap[0]
            if reps[pos].outstanding == o:
                return pos
            heappop(heap)


class PrefixIndex:
    """Block key -> positions of the replicas whose prefix cache holds that key."""

    def __init__(self, replicas: Sequence["Replica"]) -> None:
        self.holders: dict[int, set[int]] = {}
        self.n = len(replicas)
        for pos, r in enumerate(replicas):
            assert r.cache is not None
            r.cache.watch(self, pos)
            for key in r.cache.refs:
                self.add(key, pos)

    def add(self, key: int, pos: int) -> None:
        s = self.holders.get(key)
        if s is None:
            self.holders[key] = {pos}
        else:
            s.add(pos)

    def drop(self, key: int, pos: int) -> None:
        s = self.holders[key]
        s.discard(pos)
        if not s:
            del self.holders[key]

    def longest(self, keys: Sequence[int]) -> set[int] | None:
        """Positions of the replicas that hold the longest leading run of ``keys`` (None: no replica
        holds the first key, or every replica holds the same run). Costs O(1) per key that every
        replica holds, O(holders) per key that only some hold."""
        holders, n = self.holders, self.n
        best: set[int] | None = None
        for key in keys:
            h = holders.get(key)
            if h is None:
                break
            if len(h) == n:        # every replica holds it: the set so far is unchanged
                continue
            nxt = h if best is None else best & h
            if not nxt:
                break
            best = nxt
        return best
