"""One serving system: the replicas of one model behind a router, colocated or split into a prefill
pool and a decode pool joined by a KV-transfer link (DistServe, Splitwise, Dynamo)."""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from ..catalog.gpus import load_gpu
from ..catalog.model import ModelArch
from ..catalog.models import load_model
from ..config.scenario import Deployment, Pool
from ..errors import InputError
from .step_log import StepLog
from ..perf.memory import MemoryPlan
from ..perf.ops import ExpertPlan, shard
from ..perf.step import StepModel
from .capacity import Extra, extra_for_model, replica_memory
from .engine_defaults import effective_deployment, engine_for
from .itl import ItlLog
from .prefix_cache import KeyStore
from .replica import Replica, ReplicaConfig, SharedState
from .router import Router
from .speculative import SpecModels, Speculator, check_draft, eagle_head
from .state import Requests

TOO_LONG, NO_CHUNKING, BEYOND_CONTEXT = 1, 2, 3  # reject reasons (state.REJECT_REASONS)


def expert_plan(d: Deployment) -> ExpertPlan | None:
    m = d.moe
    if m is None:
        return None
    return ExpertPlan(balance=m.balance, skew=m.skew, ep=m.expert_parallel or 1, dp_attention=m.attention == "dp")


def pool_deployment(d: Deployment, p: Pool) -> Deployment:
    """The deployment one pool of a disaggregated system runs (unset keys inherited)."""
    return d.part({"gpu": p.gpu, "tp": p.tp, "pp": p.pp, "batching": p.batching, "kv_cache": p.kv_cache},
                  {"replicas": p.replicas, "disaggregation": None})


@dataclass
class PoolBuild:
    """What the replicas of one pool share: time model, memory plan and drafting models."""

    dep: Deployment
    model: ModelArch
    sm: StepModel
    plan: MemoryPlan
    kv_blocks: int
    spec: SpecModels | None
    role: str

    @property
    def gpus_per_replica(self) -> int:
        return self.dep.tp * self.dep.pp * self.dep.cp


def build_pool(model: ModelArch, d: Deployment, role: str = "colocated") -> PoolBuild:
    """Time model and memory of one replica of deployment ``d`` (its engine's defaults filled in)."""
    d = effective_deployment(d)
    gpu, engine = load_gpu(d.gpu), engine_for(d)
    experts = expert_plan(d)
    sm = StepModel(model, gpu, engine, tp=d.tp, pp=d.pp, weight_dtype=d.weight_dtype, kv_dtype=d.kv_dtype,
                   experts=experts, cp=d.cp)
    spec, extra = None, None
    c = d.speculative
    if c is not None:
        draft = None
        if c.method == "draft_model":
            arch = load_model(c.draft_model or "")
            check_draft(c, model, arch)
            dtp = d.tp if _tp_ok(arch, d.tp) else 1
            draft = StepModel(arch, gpu, engine, tp=dtp, weight_dtype=d.weight_dtype, kv_dtype=d.kv_dtype)
            extra = extra_for_model(arch, d.weight_dtype, d.kv_dtype, dtp, share_embedding=False)
        elif c.method == "eagle":
            head = eagle_head(model, c.head_layers)
            draft = StepModel(head, gpu, engine, tp=sm.attn_tp, weight_dtype=d.weight_dtype, kv_dtype=d.kv_dtype)
            extra = extra_for_model(head, d.weight_dtype, d.kv_dtype, sm.attn_tp, share_embedding=True)
        elif c.method == "medusa":
            h, v = model.hidden_size, model.vocab_size
            extra = Extra(weight_bytes=c.k * h * (h + v) * 2.0 / sm.attn_tp)
        spec = SpecModels(c, sm, draft)
    plan = replica_memory(model, gpu, d.weight_dtype, d.kv_dtype, d.tp, d.pp,
                          gpu_memory_utilization=d.kv_cache.gpu_memory_utilization,
                          max_batched_tokens=d.batching.max_batched_tokens, experts=experts, cp=d.cp, extra=extra)
    kv_blocks = d.kv_cache.num_blocks or plan.blocks(d.kv_cache.block_size)
    return PoolBuild(d, model, sm, plan, kv_blocks, spec, role)


def _tp_ok(model: ModelArch, tp: int) -> bool:
    try:
        shard(model, tp)
        return True
    except InputError:
        return False


class KVLink:
    """A prefill replica's link to the decode pool: transfers go one after another."""

    def __init__(self, bandwidth_Bps: float, latency_s: float) -> None:
        self.bandwidth, self.latency, self.free_at = bandwidth_Bps, latency_s, 0.0

    def send(self, now: float, nbytes: float) -> float:
        """Arrival time of ``nbytes`` sent at ``now``: bytes / bandwidth + latency after the link frees."""
        start = max(now, self.free_at)
        self.free_at = start + nbytes / self.bandwidth
        return self.free_at + self.latency


class ServingSystem:
    """Replicas of one model, a router in front, and (when disaggregated) the KV links between pools.

    ``first_index`` numbers this system's replicas after another system's (cascades); ``only``: build
    just the replicas with these indices (one shard of a sharded run)."""

    def __init__(self, env: simpy.Environment, model_name: str, d: Deployment, reqs: Requests, *, log: StepLog,
                 itl: ItlLog, keys: KeyStore | None, seed: int, on_done: Callable[[np.ndarray], None],
                 first_index: int = 0, only: frozenset[int] | None = None) -> None:
        self.env, self.d, self.reqs, self.itl, self.on_done = env, d, reqs, itl, on_done
        self.model = load_model(model_name)
        dis = d.disaggregation
        if dis is None:
            self.pools = [build_pool(self.model, d)]
        else:
            self.pools = [build_pool(self.model, pool_deployment(d, dis.prefill), "prefill"),
                          build_pool(self.model, pool_deployment(d, dis.decode), "decode")]
        self.replicas: list[Replica] = []
        shared = SharedState(env, reqs, log, self._finished, itl, keys)
        i = first_index - 1
        for pb in self.pools:
            for _ in range(pb.dep.replicas):
                i += 1
                if only is not None and i not in only:   # a shard of a sharded run builds its replicas only
                    continue
                spec = Speculator(pb.spec, np.random.default_rng([seed, 0x5BEC, i])) if pb.spec else None
                cfg = ReplicaConfig(pb.dep, pb.sm, pb.kv_blocks, pb.plan.kv_bytes_per_token,
                                    pb.sm.gpu.host_bandwidth, pb.role, spec)
                rep = Replica(i, cfg, shared)
                self.replicas.append(rep)
        self.front = [r for r in self.replicas if r.role != "decode"]
        self.back = [r for r in self.replicas if r.role == "decode"]
        self.router = Router(d.router, self.front, seed)
        if self.back:
            assert dis is not None
            self.back_router = Router("least_outstanding", self.back, seed)
            self.links = {r.index: KVLink(dis.link.bandwidth_gbps * 1e9, dis.link.latency_s) for r in self.front}
            self.kv_bytes_per_token = self.model.kv_bytes_per_token(d.kv_dtype)
            for r in self.front:
                r.on_prefilled = self._send
        self.held: deque[int] = deque()
        self.limit = d.max_outstanding_per_replica
        self.transfers = 0
        self.transfer_bytes = 0.0

    # ---- arrivals ---------------------------------------------------------------------
    def admit(self, rid: int) -> None:
        """A request reaches the router now."""
        if self.limit is not None:
            free = [r for r in self.front if r.outstanding < self.limit]
            if not free or self.held:
                self.held.append(rid)
                return
            self._dispatch(rid, free)
        else:
            self._dispatch(rid, None)

    def _dispatch(self, rid: int, candidates: list[Replica] | None) -> None:
        rep = self.router.choose(rid, candidates)
        req = self.reqs
        need = int(req.prompt[rid] + req.output[rid])
        reason = 0
        context = self.model.max_position_embeddings
        if context is not None and need > context:
            reason = BEYOND_CONTEXT
        elif not rep.fits_ever(need) or (self.back and not self.back[0].fits_ever(need)):
            reason = TOO_LONG
        elif rep.policy == "continuous" and not rep.chunked and req.prompt[rid] > rep.max_tokens:
            reason = NO_CHUNKING
        if reason:
            req.replica[rid] = rep.index
            req.reject(rid, reason, self.env.now)
            self.on_done(np.array([rid], dtype=np.int64))
            return
        rep.submit(rid)

    def finish_arrivals(self) -> None:
        for rep in self.replicas:
            rep.arrivals_done = True
            rep.wake()

    def _finished(self, ids: np.ndarray) -> None:
        while self.held:
            free = [r for r in self.front if r.outstanding < (self.limit or 0)]
            if not free:
                break
            self._dispatch(self.held.popleft(), free)
        self.on_done(ids)

    # ---- disaggregation ---------------------------------------------------------------
    def _send(self, rep: Replica, ids: np.ndarray) -> None:
        """Prefill done: pick a decode replica and move the KV over the prefill replica's link."""
        env, req = self.env, self.reqs
        for rid in ids.tolist():
            dst = self.back_router.choose(rid)
            dst.outstanding += 1
            nbytes = float(req.kv[rid]) * self.kv_bytes_per_token
            arrive = self.links[rep.index].send(env.now, nbytes)
            req.kv_transfer_s[rid] = arrive - env.now
            self.transfers += 1
            self.transfer_bytes += nbytes
            env.timeout(arrive - env.now).callbacks.append(
                lambda _ev, rid=rid, src=rep, dst=dst: self._arrived(rid, src, dst))

    def _arrived(self, rid: int, src: Replica, dst: Replica) -> None:
        src.release_sent(rid)
        dst.submit(rid, counted=True)

    # ---- figures ----------------------------------------------------------------------
    def gpus(self) -> int:
        return sum(pb.gpus_per_replica * pb.dep.replicas for pb in self.pools)

    def peak_flops(self) -> float:
        """Dense peak FLOP/s of all GPUs together (each in its pool's compute dtype)."""
        return sum(pb.sm.gpu.peak_flops(pb.sm.compute_dtype) * pb.gpus_per_replica * pb.dep.replicas
                   for pb in self.pools)

    def bandwidth(self) -> float:
        return sum(pb.sm.gpu.memory_bandwidth * pb.gpus_per_replica * pb.dep.replicas for pb in self.pools)

    def stats(self) -> dict[str, Any]:
        """Counters of the optimisations this system ran with."""
        out: dict[str, Any] = {}
        caches = [r.cache for r in self.replicas if r.cache is not None]
        if caches:
            out["prefix_cache"] = {"lookup_blocks": sum(c.lookups for c in caches),
                                   "hit_blocks": sum(c.hit_blocks for c in caches),
                                   "evicted_blocks": sum(c.evictions for c in caches),
                                   "cached_blocks_at_end": sum(r.pool.idle for r in self.replicas
                                                               if r.cache is not None),
                                   "references_at_end": sum(c.referenced() for c in caches),
                                   "peak_resident_fraction": max(c.pool.peak_resident / c.pool.capacity
                                                                 for c in caches)}
        specs = [r.spec for r in self.replicas if r.spec is not None]
        if specs:
            out["speculative"] = {"verify_seq_steps": sum(s.seq_steps for s in specs),
                                  "tokens": sum(s.tokens for s in specs)}
        if self.back:
            out["disaggregation"] = {"transfers": self.transfers, "transfer_bytes": self.transfer_bytes}
        return out
