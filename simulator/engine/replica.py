"""A replica: one model instance on tp × pp GPUs with its queue, KV-cache pool and scheduler(s)."""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import simpy

from ..catalog.engines import load_engine
from ..metrics.recorder import StepLog
from ..perf.step import BatchShape, StepModel, quantize
from .admission import Greedy, admission_rule
from .itl import ItlLog
from .kvcache import BlockPool, blocks_for
from .prefix_cache import KeyStore, PrefixBlockPool, PrefixCache
from .state import DONE, WAITING, Requests

if TYPE_CHECKING:
    from ..config.scenario import Deployment
    from .router_index import OutstandingHeap
    from .speculative import Speculator


class Replica:
    """Shared state of one replica; its scheduler loops (``pp`` of them) form and run batches.

    ``role``: ``colocated`` (prefill and decode), ``prefill`` (hands requests on after their first
    token through ``on_prefilled``) or ``decode``."""

    def __init__(self, env: simpy.Environment, index: int, dep: "Deployment", step_model: StepModel,
                 kv_blocks: int, reqs: Requests, log: StepLog, on_finish: Callable[[np.ndarray], None],
                 kv_bytes_per_token: float, host_bandwidth: float, itl: ItlLog | None = None,
                 keys: KeyStore | None = None, role: str = "colocated",
                 spec: "Speculator | None" = None) -> None:
        from .continuous import ContinuousScheduler
        from .static import StaticScheduler

        self.env, self.index, self.reqs, self.log = env, index, reqs, log
        self.itl = itl if itl is not None else ItlLog(reqs.n)
        self.sm = step_model
        self.role = role
        b = dep.batching
        self.policy = b.policy
        self.max_batch_size, self.max_tokens, self.chunked = b.max_batch_size, b.max_batched_tokens, b.chunked_prefill
        self.timeout_s = b.timeout_s
        self.preemption = dep.kv_cache.preemption
        self.cache: PrefixCache | None = None
        if keys is not None and dep.kv_cache.prefix_caching and role != "decode":
            self.pool: BlockPool = PrefixBlockPool(kv_blocks, dep.kv_cache.block_size, reqs.n)
            self.cache = PrefixCache(self.pool, reqs, keys)  # type: ignore[arg-type]
        else:
            self.pool = BlockPool(kv_blocks, dep.kv_cache.block_size, reqs.n)
        self.spec = spec
        self.decode_q = spec.q if spec is not None else 1
        self.window = step_model.model.sliding_window if step_model.swa_layers else None
        self.kv_bytes_per_token = kv_bytes_per_token
        self.host_bandwidth = host_bandwidth
        self.waiting: deque[int] = deque()
        self.admit_seq = np.zeros(reqs.n, dtype=np.int64)
        self._seq = 0
        self._outstanding = 0
        self._load_watchers: list[tuple["OutstandingHeap", int]] = []
        self.preemptions = 0
        self.arrivals_done = False
        self._on_finish = on_finish
        self.on_prefilled: Callable[["Replica", np.ndarray], None] | None = None
        self.pool_index = 0   # which pool of its serving system (prefill 0, decode 1 when disaggregated)
        # the engine's admission and eviction rules (admission.py); the generic ones without a scheduler block
        self.admission: Greedy = admission_rule(self, load_engine(dep.engine).scheduler)
        n_loops = dep.pp if self.policy == "continuous" else 1
        cls = ContinuousScheduler if self.policy == "continuous" else StaticScheduler
        self.loops = [cls(self) for _ in range(n_loops)]

    # ---- used by the router and the arrival process ------------------------------------
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

    def capacity_tokens(self) -> int:
        return self.pool.capacity * self.pool.block_size

    def submit(self, rid: int, counted: bool = False) -> None:
        """A request routed here joins the queue (``counted``: already in :attr:`outstanding`)."""
        self.reqs.status[rid] = WAITING
        self.reqs.replica[rid] = self.index
        self.waiting.append(rid)
        if not counted:
            self.outstanding += 1
        self.wake()

    def wake(self) -> None:
        for loop in self.loops:
            if loop.wake():
                return

    def cached_prefix(self, rid: int) -> int:
        """Leading blocks of ``rid`` this replica's prefix cache holds (0 without a cache)."""
        return self.cache.match(rid)[0] if self.cache is not None else 0

    # ---- used by the schedulers ---------------------------------------------------
    def newest_seq_besides(self, loop: object) -> int:
        """Admission number of the newest request running in the other scheduler loops (0: none)."""
        return max((x.newest_seq() for x in self.loops if x is not loop), default=0)  # type: ignore[union-attr]

    def wake_stalled(self) -> None:
        """Blocks were freed: resume the idle loops whose prefill waits for blocks."""
        for loop in self.loops:
            if loop.stalled and loop.idle:
                loop.wake()

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def step_cost(self, shape: BatchShape) -> tuple[float, float, float]:
        """(wall seconds, FLOPs, bytes) of a step; memoised, contexts rounded to ~0.5%."""
        return self.sm.cost(quantize(shape))

    def swap_seconds(self, tokens: int) -> float:
        """Seconds to move ``tokens`` tokens of KV between GPU and host memory (one way)."""
        return tokens * self.kv_bytes_per_token / self.host_bandwidth

    def _release(self, rid: int) -> None:
        if self.cache is not None:
            self.cache.promote(rid, int(self.reqs.kv[rid]))
        self.pool.release(rid)

    def preempt(self, rid: int) -> float:
        """Take a running request off the GPU; returns the seconds its swap-out costs (0 if recompute)."""
        req = self.reqs
        self._release(rid)
        self.wake_stalled()
        req.preemptions[rid] += 1
        self.preemptions += 1
        req.status[rid] = WAITING
        self.waiting.appendleft(rid)
        if self.preemption == "swap":
            req.on_host[rid] = True
            return self.swap_seconds(int(req.kv[rid]))
        req.kv[rid] = 0
        req.target[rid] = req.prompt[rid] + req.generated[rid]
        return 0.0

    def finished(self, ids: np.ndarray) -> None:
        """Requests that produced their last token: free their blocks and report them."""
        if self.cache is not None:
            for rid in ids.tolist():
                self._release(rid)
        else:
            self.pool.release_many(ids)
        self.wake_stalled()
        self.outstanding -= len(ids)
        self._on_finish(ids)
        if self.waiting:
            self.wake()

    def handoff(self, ids: np.ndarray) -> None:
        """Prefill role: requests whose first token is out leave for the decode pool (their blocks stay
        until :meth:`release_sent` after the KV transfer); single-token requests finish here."""
        req = self.reqs
        done = req.generated[ids] >= req.output[ids]
        if done.any():
            fin = ids[done]
            req.finish[fin] = req.last_token[fin]
            req.status[fin] = DONE
            self.finished(fin)
        rest = ids[~done]
        if len(rest):
            self.outstanding -= len(rest)
            assert self.on_prefilled is not None
            self.on_prefilled(self, rest)

    def release_sent(self, rid: int) -> None:
        """Prefill role: a request's KV has reached its decode replica; free its blocks here."""
        self._release(rid)
        self.wake_stalled()
        if self.waiting:
            self.wake()

    def fits_ever(self, tokens: int) -> bool:
        """Whether a request needing ``tokens`` KV tokens could ever be held."""
        return int(blocks_for(tokens, self.pool.block_size)) <= self.pool.capacity
