"""The KV interface the schedulers use: admission and allocation in tokens, blocks counted inside,
against block counts worked out by hand."""
from __future__ import annotations

import numpy as np

from simulator.engine.kv import NO_HIT, KVManager, PrefixHit
from simulator.engine.kvcache import BlockPool

from .test_prefix_cache import _cache


def test_without_a_prefix_cache_admission_counts_blocks_of_the_tokens():
    kv = KVManager(BlockPool(10, 4, 3), None)
    assert kv.lookup(0) == NO_HIT and kv.acquire_prefix(0) == 0
    assert kv.can_admit(40) and not kv.can_admit(41)       # 10 blocks of 4 tokens
    assert kv.allocate(0, 17)                              # 5 blocks
    assert kv.pool.used == 5 and kv.can_admit(20) and not kv.can_admit(21)
    assert not kv.allocate(1, 24) and kv.pool.used == 5    # 6 blocks do not fit: nothing taken
    kv.free_many(np.array([0]), np.array([17]))
    assert kv.pool.used == 0 and kv.fits_ever(40) and not kv.fits_ever(41)


def test_cached_blocks_are_shared_and_idle_ones_count_as_free():
    cache, _ = _cache(8, 4, [[(7, 17)], [(7, 17)]])
    kv = KVManager(cache.pool, cache)
    assert kv.allocate(0, 17)                              # request 0: 5 blocks, 4 of them full
    kv.computed(0, 17)
    hit = kv.lookup(1)
    assert hit == PrefixHit(blocks=4, idle=0, tokens=16)   # limit: 16 of 17 prompt tokens
    # request 1 needs blocks for 17 tokens (5) of which 4 are shared: 1 more; 3 are free
    assert kv.can_admit(17, hit) and kv.can_admit(16 + 12, hit) and not kv.can_admit(16 + 13, hit)
    kv.free(0, 17)                                         # its 4 full blocks stay cached, unreferenced
    idle = kv.lookup(1)
    assert idle == PrefixHit(blocks=4, idle=4, tokens=16)
    # all 8 blocks are free or idle: 8 blocks in all, the 4 cached ones among them
    assert kv.can_admit(32, idle) and not kv.can_admit(33, idle)
    assert kv.acquire_prefix(1) == 16 and cache.pool.idle == 0
    kv.undo_prefix(1, 16)
    assert cache.pool.idle == 4 and kv.pool.used == 0
