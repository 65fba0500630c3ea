"""A replica's KV-cache accounting behind one interface: can a request be admitted, allocate its
tokens' blocks, free them, with the prefix cache (if any) inside. Compare vLLM's
``KVCacheManager`` (``get_computed_blocks``, ``allocate_slots``, ``free``, v1/core/kv_cache_manager.py,
2025). The scheduler speaks in tokens; blocks are counted here."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .kvcache import BlockPool, blocks_for
from .prefix_cache import PrefixCache


class PrefixHit(NamedTuple):
    """What the prefix cache holds of a request's leading tokens: ``blocks`` full blocks (``tokens``
    tokens), ``idle`` of them referenced by no running request (counted as free until taken)."""

    blocks: int = 0
    idle: int = 0
    tokens: int = 0


NO_HIT = PrefixHit()


class KVManager:
    """The block pool of one replica and its prefix cache (None without prefix caching)."""

    def __init__(self, pool: BlockPool, cache: PrefixCache | None) -> None:
        self.pool, self.cache = pool, cache
        self.block_size = pool.block_size

    def lookup(self, rid: int) -> PrefixHit:
        """The cached leading blocks of ``rid`` (which holds nothing yet), without taking them."""
        if self.cache is None:
            return NO_HIT
        hit, idle = self.cache.match(rid)
        return PrefixHit(hit, idle, hit * self.block_size)

    def can_admit(self, tokens: int, hit: PrefixHit = NO_HIT) -> bool:
        """Whether a request could hold ``tokens`` tokens now, sharing the cached blocks of ``hit``."""
        need = int(blocks_for(tokens, self.block_size))
        if hit.blocks:
            need -= hit.blocks - hit.idle
        return need <= self.pool.free

    def allocate(self, rid: int, tokens: int) -> bool:
        """Grow ``rid``'s blocks to hold ``tokens`` tokens; False (nothing taken) if they are not free."""
        return self.pool.grow(rid, tokens)

    def acquire_prefix(self, rid: int) -> int:
        """Take ``rid``'s cached leading blocks (it holds nothing yet); returns their tokens (0: none)."""
        return self.cache.acquire(rid) if self.cache is not None else 0

    def undo_prefix(self, rid: int, tokens: int) -> None:
        """Give back an :meth:`acquire_prefix` of ``tokens`` tokens whose request was not admitted."""
        if tokens and self.cache is not None:
            self.cache.undo(rid, tokens)

    def computed(self, rid: int, tokens: int) -> None:
        """``rid``'s first ``tokens`` tokens are in the cache: its full blocks may be shared from now on."""
        if self.cache is not None:
            self.cache.promote(rid, tokens)

    def free(self, rid: int, tokens: int) -> None:
        """Release ``rid``'s blocks (its first ``tokens`` computed tokens stay cached for reuse)."""
        if self.cache is not None:
            self.cache.promote(rid, tokens)
        self.pool.release(rid)

    def free_many(self, ids: np.ndarray, tokens: np.ndarray) -> None:
        """:meth:`free` of each of ``ids`` with its computed tokens ``tokens``."""
        if self.cache is not None:
            for rid, kv in zip(ids.tolist(), tokens.tolist()):
                self.free(rid, int(kv))
        else:
            self.pool.release_many(ids)

    def fits_ever(self, tokens: int) -> bool:
        """Whether a request needing ``tokens`` tokens could ever be held."""
        return int(blocks_for(tokens, self.block_size)) <= self.pool.capacity
