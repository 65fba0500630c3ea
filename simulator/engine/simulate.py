"""Run one scenario: build replicas, drive arrivals through the router, collect the record."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from ..catalog.engines import load_engine
from ..catalog.gpus import load_gpu
from ..catalog.models import load_model
from ..config.scenario import Scenario
from ..errors import DoesNotFitError, InputError
from ..metrics.recorder import StepLog
from ..perf.memory import MemoryPlan, memory_plan
from ..perf.step import StepModel
from ..workload.config import ClosedLoopArrival
from ..workload.generate import generate
from .replica import Replica
from .router import Router
from .state import Requests


@dataclass
class SimulationResult:
    """Everything a run recorded: request columns, the step log, and the deployment's figures."""

    scenario: Scenario
    requests: Requests
    steps: dict[str, np.ndarray]
    memory: MemoryPlan
    kv_blocks: int
    gpus_per_replica: int
    peak_flops: float          # dense FLOP/s of one GPU in the compute dtype
    memory_bandwidth: float    # bytes/s of one GPU
    arrival_end_s: float       # when the last request arrived
    wall_time_s: float         # how long the simulation took to run
    notes: list[str] = field(default_factory=list)
    kv_blocks_in_use_at_end: list[int] = field(default_factory=list)
    kv_blocks_peak: list[int] = field(default_factory=list)


def build_step_model(s: Scenario) -> StepModel:
    """The time model of one replica of the scenario's deployment."""
    d = s.deployment
    return StepModel(load_model(s.model), load_gpu(d.gpu), load_engine(d.engine), tp=d.tp, pp=d.pp,
                     weight_dtype=d.weight_dtype, kv_dtype=d.kv_dtype)


def simulate(s: Scenario, progress: Any = None) -> SimulationResult:
    """Simulate the scenario to the last request's completion. ``progress(done, total)`` is optional."""
    t_wall = time.perf_counter()
    d = s.deployment
    sm = build_step_model(s)
    plan = memory_plan(sm.model, sm.gpu, d.weight_dtype, d.kv_dtype, d.tp, d.pp,
                       d.kv_cache.gpu_memory_utilization, d.batching.max_batched_tokens)
    kv_blocks = d.kv_cache.num_blocks or plan.blocks(d.kv_cache.block_size)
    table = generate(s.workload, s.seed)
    n = len(table)
    if n == 0:
        raise InputError("workload.requests", 0, "the workload produced no requests")
    closed = isinstance(s.workload.arrival, ClosedLoopArrival)
    reqs = Requests(table.prompt_tokens, table.output_tokens, None if closed else table.arrival_s)
    env = simpy.Environment()
    log = StepLog()
    done_count = [0]
    clients: list[Any] = []

    held: deque[int] = deque()   # requests waiting at the router (max_outstanding_per_replica)
    limit = d.max_outstanding_per_replica

    def on_finish(ids: np.ndarray) -> None:
        done_count[0] += len(ids)
        while held:
            free = [r for r in reps if r.outstanding < limit]
            if not free:
                break
            dispatch(held.popleft(), free)
        if progress is not None:
            progress(done_count[0], n)
        if closed:
            for rid in ids:
                clients[0](int(rid))

    per_token = plan.kv_bytes_per_token  # each GPU moves its own share over its own host link
    reps = [Replica(env, i, d, sm, kv_blocks, reqs, log, on_finish, per_token, sm.gpu.host_bandwidth)
            for i in range(d.replicas)]
    router = Router(d.router, reps, s.seed)
    notes = list(table.notes)

    def admit(rid: int) -> None:
        if limit is not None:
            free = [r for r in reps if r.outstanding < limit]
            if not free or held:
                held.append(rid)
                return
            dispatch(rid, free)
        else:
            dispatch(rid, None)

    def dispatch(rid: int, candidates: list[Replica] | None) -> None:
        rep = router.choose(rid, candidates)
        need = int(reqs.prompt[rid] + reqs.output[rid])
        if not rep.fits_ever(need):
            reqs.replica[rid] = rep.index
            reqs.reject(rid, 1, env.now)
            return
        if d.batching.policy == "continuous" and not d.batching.chunked_prefill \
                and reqs.prompt[rid] > d.batching.max_batched_tokens:
            reqs.replica[rid] = rep.index
            reqs.reject(rid, 2, env.now)
            return
        rep.submit(rid)

    def finish_arrivals() -> None:
        for rep in reps:
            rep.arrivals_done = True
            rep.wake()

    if closed:
        cfg = s.workload.arrival
        state = {"next": 0}
        think = table.think_s if table.think_s is not None else np.zeros(n)

        def issue() -> None:
            rid = state["next"]
            if rid >= n:
                return
            state["next"] += 1
            reqs.arrival[rid] = env.now
            admit(rid)
            if reqs.status[rid] == 4:  # rejected at once: the client moves on
                issue()
            if state["next"] >= n:
                finish_arrivals()

        def after(rid: int) -> None:
            delay = float(think[rid])
            if delay > 0:
                env.timeout(delay).callbacks.append(lambda _ev: issue())
            else:
                issue()

        clients.append(after)
        for _ in range(min(cfg.concurrency, n)):
            issue()
    else:
        arrivals = reqs.arrival

        def arrive():  # noqa: ANN202
            for rid in range(n):
                t = arrivals[rid]
                if t > env.now:
                    yield env.timeout(t - env.now)
                admit(rid)
            finish_arrivals()

        env.process(arrive())
    env.run()
    if closed:
        notes.append(f"closed loop: {s.workload.arrival.concurrency} clients")
    arrived = reqs.arrival[~np.isnan(reqs.arrival)]
    return SimulationResult(
        scenario=s, requests=reqs, steps=log.frame(), memory=plan, kv_blocks=kv_blocks,
        gpus_per_replica=d.tp * d.pp, peak_flops=sm.gpu.peak_flops(sm.compute_dtype),
        memory_bandwidth=sm.gpu.memory_bandwidth, arrival_end_s=float(arrived.max()) if len(arrived) else 0.0,
        wall_time_s=time.perf_counter() - t_wall, notes=notes,
        kv_blocks_in_use_at_end=[r.pool.used for r in reps], kv_blocks_peak=[r.pool.peak for r in reps])


__all__ = ["SimulationResult", "simulate", "build_step_model", "DoesNotFitError"]
