"""``servesim plan``: the cheapest deployments that serve a target rate within the SLOs.

For every candidate (GPU × TP × PP × dtype × batching limits) that passes the cheap checks of
:mod:`.candidates`, bisection (:mod:`.search`) finds the highest rate one replica serves while
stable with the target SLO attainment; replicas = ceil(target / that rate). Candidates are
simulated cheapest-best-case first, and one whose best case (the throughput bound) costs more
than ``prune_factor`` times the cheapest plan found so far is not simulated.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..config.scenario import Scenario
from ..errors import InputError, ServesimError
from .candidates import CANDIDATE_KINDS, Candidate, Screened, Space, rejection, screen
from .prices import load_prices
from .search import at_rate, check_rate_workload, min_window, probe, search_max_rate
from .uncertainty import wilson_interval
from ..schema import StrictModel


class PlanSettings(StrictModel):
    """What ``servesim plan`` searches and how."""

    target_rate: float = Field(gt=0, description="requests per second to serve in total")
    attainment: float = Field(0.99, gt=0, le=1, description="share of requests that must meet the SLOs")
    requests: int = Field(400, ge=50, description="requests per simulated evaluation")
    rel_tol: float = Field(0.05, gt=0, lt=1, description="bisection stops at this relative bracket width")
    max_gpus: int | None = Field(None, ge=1, description="GPUs the whole deployment may use")
    gpus: tuple[str, ...] | None = Space.gpus          # the candidate grid: defaults of candidates.Space
    tp: tuple[int, ...] = Space.tp
    pp: tuple[int, ...] = Space.pp
    weight_dtypes: tuple[str, ...] = Space.weight_dtypes
    max_batch_sizes: tuple[int, ...] = Space.max_batch_sizes
    max_batched_tokens: tuple[int, ...] = Space.max_batched_tokens
    kinds: tuple[Literal["aggregated"], ...] = ("aggregated",)
    price_kind: Literal["on-demand", "reserved", "spot"] = "on-demand"
    provider: str | None = None
    prices_file: str | None = None
    prune_factor: float = Field(1.5, ge=1.0, description="skip candidates whose best case costs this many times "
                                                         "the best plan")
    exhaustive: bool = False
    stop_when_replicas_decided: bool = True
    replications: int = Field(0, ge=0, description="extra seeds at the chosen rate for P(meet SLO)")
    workers: int = Field(1, ge=1)


@dataclass(frozen=True)
class Job:
    """One candidate's search, as sent to a worker process."""

    index: int
    scenario: Scenario
    upper: float
    start: float
    replica_cost: float
    cost_cap: float | None
    settings: PlanSettings


def evaluate(job: Job) -> dict[str, Any]:
    """Search one candidate's max rate; then simulate it at its operating rate (and replications)."""
    st = job.settings
    t0 = time.perf_counter()
    res = search_max_rate(job.scenario, job.upper, start=job.start, attainment=st.attainment,
                          requests=st.requests, rel_tol=st.rel_tol,
                          target_rate=st.target_rate if st.stop_when_replicas_decided else None,
                          replica_cost=job.replica_cost, cost_cap=job.cost_cap)
    out: dict[str, Any] = {"index": job.index, "status": res.status, "reason": res.reason, "max_rate": res.max_rate,
                           "bracket": [res.lo, res.hi], "evaluations": res.evaluations}
    if res.status == "ok":
        replicas = math.ceil(st.target_rate / res.max_rate)
        op = st.target_rate / replicas
        window = min_window(job.scenario, st.rel_tol)
        p = probe(job.scenario, op, st.requests, window_s=window)
        out.update(replicas=replicas, operating_rate=op, ttft_p99=p.ttft_p99, tpot_p99=p.tpot_p99,
                   slo_attainment=p.slo_attainment, stable=p.stable, evaluations=res.evaluations + 1)
        if st.replications:
            seeds = [job.scenario.seed + 1 + i for i in range(st.replications)]   # fresh seeds: not the search's
            hits = sum(probe(job.scenario, op, st.requests, seed, window).feasible(st.attainment) for seed in seeds)
            lo, hi = wilson_interval(hits, len(seeds))
            out.update(p_meet_slo=hits / len(seeds), p_meet_slo_ci=[lo, hi], replication_seeds=seeds)
    out["wall_s"] = time.perf_counter() - t0
    return out


def pareto_front(rows: list[dict[str, Any]], keys: tuple[str, ...] = ("cost_per_hour", "ttft_p99", "tpot_p99")
                 ) -> list[dict[str, Any]]:
    """Rows not dominated in ``keys`` (all minimised): no other row is at least as good in every key
    and better in one."""
    def vec(r: dict[str, Any]) -> tuple[float, ...]:
        return tuple(math.inf if r.get(k) is None else float(r[k]) for k in keys)
    vs = [vec(r) for r in rows]
    front = []
    for i, a in enumerate(vs):
        if not any(all(b[j] <= a[j] for j in range(len(keys))) and b != a for b in vs):
            front.append(rows[i])
    return front


def _space(st: PlanSettings) -> Space:
    per_replica = min(8, st.max_gpus) if st.max_gpus else 8
    return Space(st.gpus, st.tp, st.pp, st.weight_dtypes, st.max_batch_sizes, st.max_batched_tokens, per_replica)


def plan(base: Scenario, st: PlanSettings, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Rank the candidates that serve ``st.target_rate`` (see the module docstring).

    Returns ``plans`` (cheapest first), ``pareto`` (cost vs p99 TTFT/TPOT front), ``rejected``
    (candidate, reason, detail), ``counts`` and ``binding`` (why nothing qualified, else None).
    """
    from ..workload.generate import generate
    from .executors import mp_context

    t0 = time.perf_counter()
    check_rate_workload(base)
    book = load_prices(st.prices_file)
    eval_s = at_rate(base, base.workload.arrival.rate, st.requests)   # type: ignore[union-attr]
    table = generate(eval_s.workload, eval_s.seed)
    mean_out = float(np.mean(table.output_tokens))
    cands: list[Candidate] = []
    for kind in st.kinds:
        cands += CANDIDATE_KINDS[kind](_space(st), book.gpus(st.price_kind))
    if not cands:
        raise InputError("--gpus", list(st.gpus or ()), "no candidates: give GPUs with prices, or a wider space")
    kept, rejected = screen(eval_s, cands, book, target_rate=st.target_rate, attainment=st.attainment,
                            prompt=table.prompt_tokens, output=table.output_tokens, price_kind=st.price_kind,
                            provider=st.provider, max_gpus=st.max_gpus)
    kept.sort(key=lambda k: (k.min_cost_per_hour, -k.bound.rate))
    screen_s = time.perf_counter() - t0
    rows: list[dict[str, Any]] = []
    best = math.inf
    done = 0
    total = len(kept)

    def cap() -> float | None:
        return None if st.exhaustive or not math.isfinite(best) else st.prune_factor * best

    def accept(k: Screened, r: dict[str, Any]) -> None:
        nonlocal best
        c = k.candidate
        if r["status"] != "ok":
            reason = "SLO unreachable at any rate" if r["status"] == "unreachable" else "pruned by bound"
            rejected.append(rejection(c, reason, r["reason"]))
            return
        gpus = r["replicas"] * c.gpus
        if st.max_gpus is not None and gpus > st.max_gpus:
            rejected.append(rejection(c, "exceeds --max-gpus", f"serves {r['max_rate']:.3g} req/s per replica: "
                                      f"{st.target_rate:g} req/s needs {r['replicas']} replicas = {gpus} GPUs "
                                      f"> {st.max_gpus}") | {"gpus_needed": gpus})
            return
        cost = r["replicas"] * k.replica_cost
        best = min(best, cost)
        row = {"candidate": c.label(), "deployment": c.deployment(), "max_rate_per_replica": r["max_rate"],
               "rate_bracket": r["bracket"], "replicas": r["replicas"], "gpus": gpus, "cost_per_hour": cost,
               "cost_per_million_output_tokens": cost / (st.target_rate * mean_out * 3600.0) * 1e6,
               "ttft_p99": r["ttft_p99"], "tpot_p99": r["tpot_p99"], "slo_attainment": r["slo_attainment"],
               "stable": r["stable"], "operating_rate_per_replica": r["operating_rate"],
               "evaluations": r["evaluations"],
               "price": {"provider": k.price.provider, "kind": k.price.kind,
                         "usd_per_gpu_hour": k.price.usd_per_gpu_hour, "date": k.price.date,
                         "source": k.price.source}}
        for key in ("p_meet_slo", "p_meet_slo_ci", "replication_seeds"):
            if key in r:
                row[key] = r[key]
        rows.append(row)

    def job(i: int, k: Screened) -> Job:
        return Job(i, k.scenario, k.bound.rate, k.bound.start, k.replica_cost, cap(), st)

    def prune_rest(queue: list[int]) -> list[int]:
        limit = cap()
        if limit is None:
            return queue
        keep = []
        for i in queue:
            k = kept[i]
            if k.min_cost_per_hour > limit:
                rejected.append(rejection(k.candidate, "pruned by bound",
                                          f"best case {k.min_replicas} replicas cost ${k.min_cost_per_hour:.2f}/h, "
                                          f"more than {st.prune_factor:g}x the best plan (${best:.2f}/h)"))
            else:
                keep.append(i)
        return keep

    queue = list(range(len(kept)))
    sims = 0
    if st.workers == 1:
        while queue:
            queue = prune_rest(queue)
            if not queue:
                break
            i = queue.pop(0)
            r = evaluate(job(i, kept[i]))
            sims += r["evaluations"] + (st.replications if "p_meet_slo" in r else 0)
            accept(kept[i], r)
            done += 1
            if progress:
                progress(done, total)
    else:
        try:
            with ProcessPoolExecutor(max_workers=st.workers, mp_context=mp_context()) as pool:
                running: dict[Future, int] = {}
                while queue or running:
                    queue = prune_rest(queue)
                    while queue and len(running) < st.workers:
                        i = queue.pop(0)
                        running[pool.submit(evaluate, job(i, kept[i]))] = i
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for f in finished:
                        i = running.pop(f)
                        r = f.result()
                        sims += r["evaluations"] + (st.replications if "p_meet_slo" in r else 0)
                        accept(kept[i], r)
                        done += 1
                        if progress:
                            progress(done, total)
        except BrokenProcessPool:
            raise ServesimError("a planner worker process died (killed or out of memory); "
                                "rerun with fewer --workers or a smaller --requests") from None
    rows.sort(key=lambda r: (r["cost_per_hour"], r["ttft_p99"] or math.inf, r["tpot_p99"] or math.inf))
    reasons: dict[str, int] = {}
    for r in rejected:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return {"target_rate": st.target_rate, "attainment": st.attainment, "model": base.model,
            "slo": base.slo.model_dump(), "requests_per_evaluation": st.requests, "mean_output_tokens": mean_out,
            "price_kind": st.price_kind, "plans": rows, "pareto": pareto_front(rows), "rejected": rejected,
            "counts": {"candidates": len(cands), "screened_in": len(kept), "searched": done, "plans": len(rows),
                       "rejected": reasons, "simulations": sims, "screen_s": screen_s,
                       "wall_s": time.perf_counter() - t0},
            "binding": None if rows else binding_limit(rejected, st)}


def binding_limit(rejected: list[dict[str, Any]], st: PlanSettings) -> str:
    """One line: which limit keeps every candidate from serving the target rate."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rejected:
        by.setdefault(r["reason"], []).append(r)
    if "exceeds --max-gpus" in by or ("pruned by bound" in by and st.max_gpus is not None):
        need = [r["gpus_needed"] for r in by.get("exceeds --max-gpus", []) if "gpus_needed" in r]
        best = f"; the best candidate needs {min(need)} GPUs" if need else ""
        return (f"--max-gpus binds: no candidate serves {st.target_rate:g} req/s within {st.max_gpus} GPUs{best} "
                f"(raise --max-gpus or lower --target-rate)")
    if "SLO unreachable at any rate" in by:
        slos: dict[str, int] = {}
        for r in by["SLO unreachable at any rate"]:
            key = r["detail"].split(" binds", 1)[0]
            slos[key] = slos.get(key, 0) + 1
        worst = max(slos, key=lambda k: slos[k])
        return (f"the SLO binds: {worst} cannot be met at {st.attainment:.1%} attainment on "
                f"{len(by['SLO unreachable at any rate'])} candidates (loosen the SLO or the attainment)")
    if "does not fit" in by or "unsupported" in by:
        return "memory binds: the model fits on no candidate (allow more GPUs per replica, fp8, or larger GPUs)"
    if "no price" in by:
        return "prices bind: no candidate GPU has a price of this kind (add one with --prices FILE)"
    return "no candidate qualified: " + "; ".join(f"{k}: {len(v)}" for k, v in by.items())
