"""A replica: one model instance on tp × pp GPUs with its queue, KV-cache pool and scheduler(s)."""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import simpy

from ..metrics.recorder import StepLog
from ..perf.step import BatchShape, StepModel, quantize
from .kvcache import BlockPool, blocks_for
from .state import WAITING, Requests

if TYPE_CHECKING:
    from ..config.scenario import Deployment


class Replica:
    """Shared state of one replica; its scheduler loops (``pp`` of them) form and run batches."""

    def __init__(self, env: simpy.Environment, index: int, dep: "Deployment", step_model: StepModel,
                 kv_blocks: int, reqs: Requests, log: StepLog, on_finish: Callable[[np.ndarray], None],
                 kv_bytes_per_token: float, host_bandwidth: float) -> None:
        from .continuous import ContinuousScheduler
        from .static import StaticScheduler

        self.env, self.index, self.reqs, self.log = env, index, reqs, log
        self.sm = step_model
        b = dep.batching
        self.policy = b.policy
        self.max_batch_size, self.max_tokens, self.chunked = b.max_batch_size, b.max_batched_tokens, b.chunked_prefill
        self.timeout_s = b.timeout_s
        self.preemption = dep.kv_cache.preemption
        self.pool = BlockPool(kv_blocks, dep.kv_cache.block_size, reqs.n)
        self.window = step_model.model.sliding_window if step_model.swa_layers else None
        self.kv_bytes_per_token = kv_bytes_per_token
        self.host_bandwidth = host_bandwidth
        self.waiting: deque[int] = deque()
        self.admit_seq = np.zeros(reqs.n, dtype=np.int64)
        self._seq = 0
        self.outstanding = 0
        self.preemptions = 0
        self.arrivals_done = False
        self._on_finish = on_finish
        n_loops = dep.pp if self.policy == "continuous" else 1
        cls = ContinuousScheduler if self.policy == "continuous" else StaticScheduler
        self.loops = [cls(self) for _ in range(n_loops)]

    # ---- used by the router and the arrival process ------------------------------------
    def capacity_tokens(self) -> int:
        return self.pool.capacity * self.pool.block_size

    def submit(self, rid: int) -> None:
        """A request routed here joins the queue."""
        self.reqs.status[rid] = WAITING
        self.reqs.replica[rid] = self.index
        self.waiting.append(rid)
        self.outstanding += 1
        self.wake()

    def wake(self) -> None:
        for loop in self.loops:
            if loop.wake():
                return

    # ---- used by the schedulers ---------------------------------------------------
    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def step_cost(self, shape: BatchShape) -> tuple[float, float, float]:
        """(wall seconds, FLOPs, bytes) of a step; memoised, contexts rounded to ~0.5%."""
        return self.sm.cost(quantize(shape))

    def swap_seconds(self, tokens: int) -> float:
        """Seconds to move ``tokens`` tokens of KV between GPU and host memory (one way)."""
        return tokens * self.kv_bytes_per_token / self.host_bandwidth

    def preempt(self, rid: int) -> float:
        """Take a running request off the GPU; returns the seconds its swap-out costs (0 if recompute)."""
        req = self.reqs
        self.pool.release(rid)
        req.preemptions[rid] += 1
        self.preemptions += 1
        req.status[rid] = WAITING
        self.waiting.appendleft(rid)
        if self.preemption == "swap":
            return self.swap_seconds(int(req.kv[rid]))
        req.kv[rid] = 0
        req.target[rid] = req.prompt[rid] + req.generated[rid]
        return 0.0

    def finished(self, ids: np.ndarray) -> None:
        """Requests that produced their last token: free their blocks and report them."""
        self.pool.release_many(ids)
        self.outstanding -= len(ids)
        self._on_finish(ids)
        if self.waiting:
            self.wake()

    def fits_ever(self, tokens: int) -> bool:
        """Whether a request needing ``tokens`` KV tokens could ever be held."""
        return int(blocks_for(tokens, self.pool.block_size)) <= self.pool.capacity
