"""A replica: one model instance on tp × pp GPUs with its queue, KV-cache pool and scheduler(s)."""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import simpy

from ..catalog.engines import load_engine
from .step_log import StepLog
from ..perf.step import StepModel
from .admission import Greedy, admission_rule
from .itl import ItlLog
from .kv import KVManager
from .kvcache import BlockPool
from .prefix_cache import KeyStore, PrefixBlockPool, PrefixCache
from .router_index import OutstandingHeap, WatchedLoad
from .schedulers import ContinuousScheduler, Scheduler, StaticScheduler
from .state import DONE, WAITING, Requests

if TYPE_CHECKING:
    from ..config.scenario import Deployment
    from .speculative import Speculator


@dataclass(frozen=True)
class ReplicaConfig:
    """What one replica is: its deployment, step model, KV blocks (``kv_bytes_per_token`` each token),
    the host link its swaps use, its role and its drafting. ``role``: ``colocated`` (prefill and
    decode), ``prefill`` (hands requests on after their first token through ``on_prefilled``) or
    ``decode``."""

    dep: "Deployment"
    step_model: StepModel
    kv_blocks: int
    kv_bytes_per_token: float
    host_bandwidth: float
    role: str = "colocated"
    spec: "Speculator | None" = None


@dataclass(frozen=True)
class SharedState:
    """What the replicas of one simulation share: the clock, the request table, the step log, the
    completion callback, the per-request ITL log (None: a private one) and the prompts' block keys
    (None: no prefix caching)."""

    env: simpy.Environment
    reqs: Requests
    log: StepLog
    on_finish: Callable[[np.ndarray], None]
    itl: ItlLog | None = None
    keys: KeyStore | None = None


class Replica(WatchedLoad):
    """Shared state of one replica; its scheduler loops (``pp`` of them) form and run batches."""

    def __init__(self, index: int, cfg: ReplicaConfig, shared: SharedState) -> None:
        env, reqs, itl, keys = shared.env, shared.reqs, shared.itl, shared.keys
        dep, step_model, kv_blocks, role, spec = cfg.dep, cfg.step_model, cfg.kv_blocks, cfg.role, cfg.spec
        self.env, self.index, self.reqs, self.log = env, index, reqs, shared.log
        self.itl = itl if itl is not None else ItlLog(reqs.n)
        self.sm = step_model
        self.role = role
        b = dep.batching
        self.policy = b.policy
        self.max_batch_size, self.max_tokens, self.chunked = b.max_batch_size, b.max_batched_tokens, b.chunked_prefill
        self.timeout_s = b.timeout_s
        self.prefill_wait, self.recv_interval = b.prefill_wait, b.recv_interval
        self.preemption = dep.kv_cache.preemption
        self.cache: PrefixCache | None = None
        if keys is not None and dep.kv_cache.prefix_caching and role != "decode":
            self.pool: BlockPool = PrefixBlockPool(kv_blocks, dep.kv_cache.block_size, reqs.n)
            self.cache = PrefixCache(self.pool, reqs, keys)  # type: ignore[arg-type]
        else:
            self.pool = BlockPool(kv_blocks, dep.kv_cache.block_size, reqs.n)
        self.kv = KVManager(self.pool, self.cache)   # what the schedulers allocate and free through
        self.spec = spec
        # an engine that overlaps host work with the GPU forms each batch while the previous step runs
        self.schedules_ahead = step_model.engine.overlap_host
        self.decode_q = spec.q if spec is not None else 1
        self.window = step_model.model.sliding_window if step_model.swa_layers else None
        self.kv_bytes_per_token = cfg.kv_bytes_per_token
        self.host_bandwidth = cfg.host_bandwidth
        self.waiting: deque[int] = deque()
        self.admit_seq = np.zeros(reqs.n, dtype=np.int64)
        self._seq = 0
        self._outstanding = 0
        self.submits = 0          # requests queued here so far (their order breaks ties of equal times)
        self._load_watchers: list[tuple[OutstandingHeap, int]] = []
        self.preemptions = 0
        self.arrivals_done = False
        self._on_finish = shared.on_finish
        self.on_prefilled: Callable[["Replica", np.ndarray], None] | None = None
        # the engine's admission and eviction rules (admission.py); the generic ones without a scheduler block
        rules = load_engine(dep.engine).scheduler
        self.admission: Greedy = admission_rule(self, rules)
        # prefill chunks and decodes in one step: the deployment's choice, else the engine's rule
        self.mixed = b.mixed_batches if b.mixed_batches is not None else (rules is None or rules.mixed_batches)
        n_loops = dep.pp if self.policy == "continuous" else 1
        cls = ContinuousScheduler if self.policy == "continuous" else StaticScheduler
        self.loops: list[Scheduler] = [cls(self) for _ in range(n_loops)]

    # ---- used by the router and the arrival process (outstanding: WatchedLoad) ----------

    def submit(self, rid: int, counted: bool = False) -> None:
        """A request routed here joins the queue (``counted``: already in :attr:`outstanding`)."""
        self.reqs.status[rid] = WAITING
        self.reqs.replica[rid] = self.index
        self.reqs.queued[rid] = self.env.now
        self.submits += 1
        self.reqs.queued_seq[rid] = self.submits
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
        return self.kv.lookup(rid).blocks

    # ---- used by the schedulers ---------------------------------------------------
    def newest_seq_besides(self, loop: Scheduler) -> int:
        """Admission number of the newest request running in the other scheduler loops (0: none)."""
        return max((x.newest_seq() for x in self.loops if x is not loop), default=0)

    def wake_stalled(self) -> None:
        """Blocks were freed: resume the idle loops whose prefill waits for blocks."""
        for loop in self.loops:
            if loop.stalled and loop.idle:
                loop.wake()

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def swap_seconds(self, tokens: int) -> float:
        """Seconds to move ``tokens`` tokens of KV between GPU and host memory (one way)."""
        return tokens * self.kv_bytes_per_token / self.host_bandwidth

    def _release(self, rid: int) -> None:
        self.kv.free(rid, int(self.reqs.kv[rid]))

    def preempt(self, rid: int) -> float:
        """Take a running request off the GPU; returns the seconds its swap-out costs (0 if recompute)."""
        req = self.reqs
        self._release(rid)
        self.wake_stalled()
        req.preemptions[rid] += 1
        self.preemptions += 1
        req.status[rid] = WAITING
        req.queued[rid] = -np.inf      # the scheduler knows it: it may run in the next step
        self.waiting.appendleft(rid)
        if self.preemption == "swap":
            req.on_host[rid] = True
            return self.swap_seconds(int(req.kv[rid]))
        req.kv[rid] = 0
        req.target[rid] = req.prompt[rid] + req.generated[rid]
        return 0.0

    def finished(self, ids: np.ndarray) -> None:
        """Requests that produced their last token: free their blocks and report them."""
        self.kv.free_many(ids, self.reqs.kv[ids])
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
        return self.kv.fits_ever(tokens)
