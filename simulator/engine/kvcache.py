"""Paged KV-cache memory: a pool of fixed-size blocks, counted per request."""
from __future__ import annotations

import numpy as np

from ..errors import InputError


def blocks_for(tokens: np.ndarray | int, block_size: int) -> np.ndarray | int:
    """Blocks needed to hold ``tokens`` tokens (ceil division)."""
    return -(-tokens // block_size)


class BlockPool:
    """``capacity`` blocks of ``block_size`` tokens; ``held[rid]`` blocks per request."""

    def __init__(self, capacity: int, block_size: int, n_requests: int) -> None:
        if capacity < 1:
            raise InputError("deployment.kv_cache.block_size", block_size,
                             "the KV-cache memory left after the weights holds no whole block of this many tokens; "
                             "lower kv_cache.block_size (16 is usual), raise gpu_memory_utilization, or use more GPUs")
        self.capacity = int(capacity)
        self.block_size = int(block_size)
        self.used = 0
        self.peak = 0
        self.held = np.zeros(n_requests, dtype=np.int64)

    @property
    def free(self) -> int:
        return self.capacity - self.used

    def grow(self, rid: int, tokens: int) -> bool:
        """Make ``rid`` hold enough blocks for ``tokens`` tokens; False (nothing changed) if short."""
        need = int(blocks_for(tokens, self.block_size)) - int(self.held[rid])
        if need <= 0:
            return True
        if need > self.free:
            return False
        self.held[rid] += need
        self.used += need
        if self.used > self.peak:
            self.peak = self.used
        return True

    def take(self, n: int) -> None:
        """Take ``n`` blocks for requests whose holdings the caller tracks."""
        if n > self.free:
            raise RuntimeError("KV block pool overcommitted")
        self.used += n
        if self.used > self.peak:
            self.peak = self.used

    def release(self, rid: int) -> int:
        """Free all of ``rid``'s blocks; returns how many."""
        n = int(self.held[rid])
        self.held[rid] = 0
        self.used -= n
        return n

    def release_many(self, rids: np.ndarray) -> None:
        """Free all blocks of several requests."""
        held = self.held
        if len(rids) <= 4:   # usually one or two: scalar reads cost less than a gather and a sum
            for rid in rids.tolist():
                self.used -= int(held[rid])
                held[rid] = 0
            return
        self.used -= int(held[rids].sum())
        held[rids] = 0
