"""Automatic prefix caching: full KV blocks keyed by their token prefix, shared and reference-counted.

Block i of a request has key h_i = hash(h_{i-1}, content of block i), so equal keys mean equal
first (i+1)·block_size tokens (vLLM's automatic prefix caching; SGLang's radix cache shares the same
prefixes). A request admitted with an empty cache slot looks up its leading blocks; the hits skip
prefill (its prefill starts at the cached length and still attends to the prefix). Blocks become
cache entries as soon as they are full of computed tokens (prompt chunks while prefilling, the
generated tokens when the request ends or is preempted). An entry nobody references stays in
memory, evictable, and is evicted least recently released first when blocks are needed; a request
releases its blocks deepest first, so a chain is evicted from its tail.

Accounting: ``pool.used`` counts referenced blocks (private ones plus each shared entry once),
``pool.idle`` the unreferenced cached ones; ``used + idle <= capacity`` always. ``pool.held[rid]``
counts every block a request maps, ``pool.shared[rid]`` the leading ones that are cache entries.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from ..workload.prefix import USER, PromptSegments, output_id
from .kvcache import BlockPool
from .state import Requests

if TYPE_CHECKING:
    from .router_index import PrefixIndex

_M1, _M2, _M3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """A 64-bit hash of three uint64 arrays (splitmix64 finaliser over a linear mix)."""
    with np.errstate(over="ignore"):
        x = a * _M1 ^ (b + _M2) * _M3 ^ (c + np.uint64(1)) * _M2
        x ^= x >> np.uint64(30)
        x *= _M2
        x ^= x >> np.uint64(27)
        x *= _M3
        x ^= x >> np.uint64(31)
    return x


def block_keys(ids: np.ndarray, lengths: np.ndarray, block_size: int) -> list[int]:
    """Keys of the full blocks of a token sequence given as segments (content id, tokens).

    The key of the prefix of length L is hash(chain of the segments before the one holding token L,
    that segment's id, L minus its start): equal keys ⇔ equal first L tokens."""
    ends = np.cumsum(lengths)
    total = int(ends[-1]) if len(ends) else 0
    nb = total // block_size
    if nb == 0:
        return []
    chain = np.empty(len(ids), dtype=np.uint64)
    c = 0
    for j, sid in enumerate(ids.tolist()):
        chain[j] = c & 0xFFFFFFFFFFFFFFFF
        c = hash((c, sid))
    L = np.arange(1, nb + 1, dtype=np.int64) * block_size
    j = np.searchsorted(ends, L, side="left")
    start = ends[j] - lengths[j]
    keys = _mix(chain[j], ids[j].astype(np.uint64), (L - start).astype(np.uint64))
    return keys.tolist()


class PrefixBlockPool(BlockPool):
    """A block pool whose requests share cached prefix blocks (see the module docstring)."""

    def __init__(self, capacity: int, block_size: int, n_requests: int) -> None:
        super().__init__(capacity, block_size, n_requests)
        self.shared = np.zeros(n_requests, dtype=np.int64)
        self.idle = 0
        self.peak_resident = 0     # most blocks in memory at once, cached ones included
        self.cache: PrefixCache | None = None

    def _reclaim(self) -> None:
        over = self.used + self.idle - self.capacity
        if over > 0 and self.cache is not None:
            self.idle -= self.cache.evict(over)
        if self.used + self.idle > self.peak_resident:
            self.peak_resident = self.used + self.idle

    def grow(self, rid: int, tokens: int) -> bool:
        ok = super().grow(rid, tokens)
        self._reclaim()
        return ok

    def take(self, n: int) -> None:
        super().take(n)
        self._reclaim()

    def release(self, rid: int) -> int:
        n = int(self.held[rid] - self.shared[rid])
        self.used -= n
        self.held[rid] = 0
        if self.shared[rid] and self.cache is not None:
            self.cache.release(rid)
        return n

    def release_many(self, rids: np.ndarray) -> None:
        for rid in rids.tolist():
            self.release(rid)


class KeyStore:
    """Block keys of the requests in flight, shared by every replica (and block size) that needs them."""

    def __init__(self, reqs: Requests, segments: PromptSegments | None) -> None:
        self.reqs, self.segments = reqs, segments
        self._keys: dict[int, dict[int, list[int]]] = {}

    def keys(self, rid: int, block_size: int) -> list[int]:
        """Keys of the full blocks of request ``rid``'s prompt followed by its answer."""
        by_size = self._keys.get(rid)
        if by_size is None:
            by_size = self._keys[rid] = {}
        k = by_size.get(block_size)
        if k is None:
            r = self.reqs
            if self.segments is not None:
                ids, lens = self.segments.of(rid)
            else:
                ids, lens = np.array([USER + rid], dtype=np.int64), np.array([r.prompt[rid]], dtype=np.int64)
            ids = np.append(ids, np.int64(output_id(rid)))
            lens = np.append(lens, r.output[rid])
            k = by_size[block_size] = block_keys(ids, lens, block_size)
        return k

    def forget(self, rid: int) -> None:
        """Drop a finished request's keys (its blocks are released already)."""
        self._keys.pop(rid, None)


class PrefixCache:
    """The cache entries of one replica."""

    def __init__(self, pool: PrefixBlockPool, reqs: Requests, store: KeyStore) -> None:
        self.pool, self.reqs, self.store = pool, reqs, store
        self.bs = pool.block_size
        pool.cache = self
        self.refs: dict[int, int] = {}                     # key -> requests referencing it
        self.lru: OrderedDict[int, None] = OrderedDict()  # unreferenced entries, oldest first
        self.lookups = self.hit_blocks = self.evictions = 0
        self.index: PrefixIndex | None = None              # the router's key -> replicas index
        self.index_pos = 0

    def watch(self, index: "PrefixIndex", pos: int) -> None:
        """Tell ``index`` (as replica ``pos``) whenever an entry is created or evicted."""
        self.index, self.index_pos = index, pos

    def keys(self, rid: int) -> list[int]:
        return self.store.keys(rid, self.bs)

    # ---- lookups ----------------------------------------------------------------
    def _limit(self, rid: int) -> int:
        """Blocks a hit may cover: at least one token of the prompt is left to compute (for its logits)."""
        return max(0, int(self.reqs.target[rid] - 1) // self.bs)

    def match(self, rid: int) -> tuple[int, int]:
        """(leading blocks of ``rid`` in the cache, how many of those are unreferenced)."""
        keys, refs = self.keys(rid), self.refs
        h = idle = 0
        for key in keys[: self._limit(rid)]:
            c = refs.get(key)
            if c is None:
                break
            h += 1
            idle += c == 0
        return h, idle

    def acquire(self, rid: int) -> int:
        """Reference ``rid``'s cached leading blocks (it holds nothing yet); returns the cached tokens."""
        keys, refs, lru, pool = self.keys(rid), self.refs, self.lru, self.pool
        limit = self._limit(rid)
        self.lookups += min(limit, len(keys))
        h = woken = 0
        for key in keys[:limit]:
            c = refs.get(key)
            if c is None:
                break
            if not c:
                del lru[key]
                woken += 1
            refs[key] = c + 1
            h += 1
        if h:
            pool.idle -= woken
            pool.used += woken
            self.hit_blocks += h
            pool.shared[rid] = pool.held[rid] = h
            if pool.used > pool.peak:
                pool.peak = pool.used
        return h * self.bs

    def undo(self, rid: int, tokens: int) -> None:
        """Give back an :meth:`acquire` whose request could not be admitted after all."""
        if tokens:
            self.lookups -= min(self._limit(rid), len(self.keys(rid)))
            self.hit_blocks -= tokens // self.bs
            self.pool.release(rid)
            self.pool.shared[rid] = 0

    # ---- entries ----------------------------------------------------------------
    def promote(self, rid: int, tokens: int) -> None:
        """Blocks of ``rid`` that are full of computed tokens (the first ``tokens``) become entries."""
        pool, refs, lru = self.pool, self.refs, self.lru
        s = int(pool.shared[rid])
        keys = self.keys(rid)
        top = min(tokens // self.bs, len(keys), int(pool.held[rid]))
        if top <= s:
            return
        dup = woken = 0
        for key in keys[s:top]:
            c = refs.get(key)
            if c is None:
                refs[key] = 1              # the private block becomes the entry
                if self.index is not None:
                    self.index.add(key, self.index_pos)
                continue
            dup += 1                       # another request cached it first: use that, free ours
            if not c:
                del lru[key]
                woken += 1
            refs[key] = c + 1
        pool.used += woken - dup
        pool.idle -= woken
        pool.shared[rid] = top

    def release(self, rid: int) -> None:
        """Drop ``rid``'s references (deepest block first, so chains are evicted from the tail)."""
        pool, refs, lru = self.pool, self.refs, self.lru
        s = int(pool.shared[rid])
        freed = 0
        for key in reversed(self.keys(rid)[:s]):
            c = refs[key] - 1
            refs[key] = c
            if not c:
                lru[key] = None
                freed += 1
        pool.used -= freed
        pool.idle += freed
        pool.shared[rid] = 0

    def evict(self, n: int) -> int:
        """Evict up to ``n`` unreferenced entries, least recently released first; returns how many."""
        k = 0
        lru, refs = self.lru, self.refs
        while k < n and lru:
            key, _ = lru.popitem(last=False)
            del refs[key]
            if self.index is not None:
                self.index.drop(key, self.index_pos)
            k += 1
        self.evictions += k
        return k

    def referenced(self) -> int:
        """Sum of reference counts (0 once every request has released its blocks)."""
        return sum(self.refs.values())
