"""Run one scenario: build the serving system(s), drive arrivals through the front door, collect the record."""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from ..catalog.gpus import load_gpu
from ..catalog.models import load_model
from ..config.scenario import Deployment, Scenario
from ..errors import DoesNotFitError, InputError
from .step_log import StepLog
from ..perf.memory import MemoryPlan
from ..perf.step import StepModel
from ..workload.config import ClosedLoopArrival
from ..workload.generate import generate_plan
from . import decode_set
from .clients import Clients, ClosedLoop, OpenLoop, Sessions
from .guard import check_memory
from .itl import ItlLog
from .engine_defaults import describe, effective_deployment, engine_for
from .prefix_cache import KeyStore
from .service import SMALL, FrontDoor
from .state import REJECTED, Requests
from .system import ServingSystem, expert_plan


@dataclass
class SimulationResult:
    """Everything a run recorded: request columns, the step log, and the deployment's figures.

    ``peak_flops``/``memory_bandwidth`` are one GPU's (of the first pool); ``total_gpus``,
    ``peak_flops_total`` and ``bandwidth_total`` cover every GPU of every pool and model.
    ``kv_blocks_by_replica`` indexes like the step log's ``replica`` column."""

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
    kv_blocks_by_replica: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    total_gpus: int = 0
    peak_flops_total: float = 0.0
    bandwidth_total: float = 0.0
    features: dict[str, Any] = field(default_factory=dict)
    itl_logs: list[ItlLog] = field(default_factory=list)
    _itl: tuple[np.ndarray, np.ndarray] | None = None

    def request_itl(self) -> tuple[np.ndarray, np.ndarray]:
        """Per request (p50, p99) of its inter-token gaps in seconds, exact at any request count;
        NaN for requests with fewer than two token deliveries."""
        if self._itl is None:
            n = self.requests.n
            out = np.full((n, 2), np.nan)
            if self.itl_logs:
                out, _ = self.itl_logs[0].per_request(n)
                if len(self.itl_logs) > 1:
                    small, _ = self.itl_logs[1].per_request(n)
                    sel = self.requests.served_by == SMALL
                    out[sel] = small[sel]
            self._itl = (out[:, 0], out[:, 1])
        return self._itl


def build_step_model(s: Scenario) -> StepModel:
    """The time model of one replica of the scenario's deployment."""
    d = s.deployment
    return StepModel(load_model(s.model), load_gpu(d.gpu), engine_for(d), tp=d.tp, pp=d.pp,
                     weight_dtype=d.weight_dtype, kv_dtype=d.kv_dtype, experts=expert_plan(d), cp=d.cp)


def small_deployment(d: Deployment) -> Deployment:
    """The deployment of a cascade's small model (unset keys inherited from the large one)."""
    c = d.cascade
    assert c is not None
    m = c.small
    return d.part({"gpu": m.gpu, "weight_dtype": m.weight_dtype, "batching": m.batching, "kv_cache": m.kv_cache},
                  {"tp": m.tp, "pp": m.pp, "cp": 1, "replicas": m.replicas, "cascade": None, "service_cache": None,
                   "disaggregation": None, "speculative": None, "moe": None, "max_outstanding_per_replica": None})


#: The note a run carries when the engine's compiled parts were not built (no C compiler at install).
NOT_COMPILED = ("engine: compiled parts not built (no C compiler at install); ran the pure-Python "
                "references: the same results, about 1.8x slower")


#: Requests from which a run collects its garbage cycles before returning. A full collection costs
#: 30-40 ms even after a tiny run (it walks every object of the process), 0.24 s after 100,000 chat
#: requests (5% of their simulation, 44 MB freed) and frees 300 MB after 1,000,000
#: (docs/benchmarks/README.md, "Peak memory of the summary").
COLLECT_FROM = 50_000


def simulate(s: Scenario, progress: Any = None) -> SimulationResult:
    """Simulate the scenario to the last request's completion. ``progress(done, total)`` is optional."""
    t_wall = time.perf_counter()
    check_memory(s)
    d = effective_deployment(s.deployment)
    wp = generate_plan(s.workload, s.seed)
    table = wp.table
    if len(table) == 0:
        raise InputError("workload.requests", 0, "the workload produced no requests")
    closed = isinstance(s.workload.arrival, ClosedLoopArrival)
    reqs = Requests(table.prompt_tokens, table.output_tokens, None if closed or wp.sessions else table.arrival_s)
    env = simpy.Environment()
    keys = KeyStore(reqs, wp.segments) if _prefix_caching(d) else None
    tally = _Tally(reqs, keys, progress)
    run = _build(env, s, d, reqs, keys, tally.completed)
    tally.clients = _clients(env, s, wp, reqs, run)
    tally.clients.start()
    env.run()
    result = _result(s, reqs, run, table.notes, time.perf_counter() - t_wall)
    if reqs.n >= COLLECT_FROM:
        # the step model's price memo (parts, op times: nearly all of what is freed) hangs off the
        # replicas, which the scheduler's SimPy process and the run refer to in cycles: only the
        # cycle collector frees them, and it may not run before the summary needs the memory
        del env, keys, tally, run, wp, table
        gc.collect()
    return result


def _prefix_caching(d: Deployment) -> bool:
    """Whether any model of the deployment caches prefixes (then requests carry block keys)."""
    small = d.cascade.small.kv_cache or d.kv_cache if d.cascade is not None else None
    return d.kv_cache.prefix_caching or (small is not None and small.prefix_caching)


class _Tally:
    """Hears of every request that is over: counts answers, frees block keys, tells the clients."""

    def __init__(self, reqs: Requests, keys: KeyStore | None, progress: Any) -> None:
        self.reqs, self.keys, self.progress = reqs, keys, progress
        self.answered = 0
        self.clients: Clients | None = None

    def completed(self, ids: np.ndarray) -> None:
        status = self.reqs.status
        rids = ids.tolist()
        answered = sum(1 for rid in rids if status[rid] != REJECTED)   # a few ids: no numpy call
        self.answered += answered
        if self.keys is not None:
            for rid in rids:
                self.keys.forget(rid)
        if self.progress is not None and answered:
            self.progress(self.answered, self.reqs.n)
        clients = self.clients
        if clients is not None and clients.follows:
            for rid in rids:
                clients.done(rid)


@dataclass
class _Run:
    """The systems one run drives: the main one, a cascade's small one, and the log they share."""

    front: FrontDoor
    systems: list[ServingSystem]
    log: StepLog
    itl_logs: list[ItlLog]
    arrive: Any

    def arrivals_over(self) -> None:
        for sysm in self.systems:
            sysm.finish_arrivals()


def _build(env: simpy.Environment, s: Scenario, d: Deployment, reqs: Requests, keys: KeyStore | None,
           completed: Any) -> _Run:
    """The front door and the serving system(s) behind it."""
    n = reqs.n
    log, itl = StepLog(), ItlLog(n)
    front = FrontDoor(env, s, reqs, completed)
    main = ServingSystem(env, s.model, d, reqs, log=log, itl=itl, keys=keys, seed=s.seed, on_done=completed)
    front.main = main
    run = _Run(front, [main], log, [itl], front.arrive if d.service_cache is not None or d.cascade is not None
               else main.admit)
    if d.cascade is not None:
        small_reqs = Requests(reqs.prompt, reqs.output)
        small_itl = ItlLog(n)
        front.small = ServingSystem(env, d.cascade.small.model, small_deployment(d), small_reqs, log=log,
                                    itl=small_itl, keys=keys, seed=s.seed, on_done=front.small_done,
                                    first_index=len(main.replicas))
        front.small_reqs = small_reqs
        run.systems.append(front.small)
        run.itl_logs.append(small_itl)
    return run


def _clients(env: simpy.Environment, s: Scenario, wp: Any, reqs: Requests, run: _Run) -> Clients:
    """The clients the workload describes."""
    arrival = s.workload.arrival
    if isinstance(arrival, ClosedLoopArrival):
        return ClosedLoop(env, reqs, run.arrive, run.arrivals_over, concurrency=arrival.concurrency,
                          think_s=wp.table.think_s)
    if wp.sessions is not None:
        return Sessions(env, reqs, run.arrive, run.arrivals_over, sessions=wp.sessions)
    return OpenLoop(env, reqs, run.arrive, run.arrivals_over)


def _result(s: Scenario, reqs: Requests, run: _Run, workload_notes: list[str], wall_s: float) -> SimulationResult:
    """The record of a finished run."""
    notes = list(workload_notes)
    engine_note = describe(s.deployment)
    if engine_note is not None:
        notes.append(engine_note)
    if decode_set.NativeDecodeSet is None:
        notes.append(NOT_COMPILED)
    if isinstance(s.workload.arrival, ClosedLoopArrival):
        notes.append(f"closed loop: {s.workload.arrival.concurrency} clients")
    main, front, systems = run.systems[0], run.front, run.systems
    features: dict[str, Any] = {**main.stats(), **front.stats()}
    if front.small is not None:
        features["cascade_small_model"] = front.small.stats()
    replicas = [r for sysm in systems for r in sysm.replicas]
    arrived = reqs.arrival[~np.isnan(reqs.arrival)]
    pb = main.pools[0]
    return SimulationResult(
        scenario=s, requests=reqs, steps=run.log.frame(), memory=pb.plan, kv_blocks=pb.kv_blocks,
        gpus_per_replica=pb.gpus_per_replica, peak_flops=pb.sm.gpu.peak_flops(pb.sm.compute_dtype),
        memory_bandwidth=pb.sm.gpu.memory_bandwidth, arrival_end_s=float(arrived.max()) if len(arrived) else 0.0,
        wall_time_s=wall_s, notes=notes,
        kv_blocks_in_use_at_end=[r.pool.used for r in replicas], kv_blocks_peak=[r.pool.peak for r in replicas],
        kv_blocks_by_replica=np.array([r.pool.capacity for r in replicas], dtype=np.int64),
        total_gpus=sum(x.gpus() for x in systems), peak_flops_total=sum(x.peak_flops() for x in systems),
        bandwidth_total=sum(x.bandwidth() for x in systems), features=features, itl_logs=run.itl_logs)


__all__ = ["SimulationResult", "simulate", "build_step_model", "small_deployment", "DoesNotFitError"]
