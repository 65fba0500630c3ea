"""The planner's search loop: candidates simulated in order (in worker processes or inline),
pruned by cost, and turned into ranked rows.

Pruning compares like with like: a priced candidate whose best case costs more than
``prune_factor`` times the cheapest priced plan is skipped; an unpriced one whose best case needs
more than ``prune_factor`` times the GPUs of the smallest plan on the same GPU type is skipped (on
one GPU type, dollars are proportional to GPUs whatever the price). Pruned candidates are reported
at the end, against the final best plan, never a provisional one.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from ..config.scenario import Scenario
from .candidates import Screened, rejection
from .plan_executor import plan_executor
from .layouts import DisaggCandidate, EPCandidate
from .plan_settings import PlanSettings
from .prices import PriceEntry
from .pools import match_pools
from .search import (Bound, Probe, Probes, ProbeTask, min_window, replay, run_probe, search_max_rate,
                     serial_probes)
from .uncertainty import wilson_interval


@dataclass(frozen=True)
class Job:
    """One candidate's search, as sent to a worker process (costs in dollars, or GPUs when unpriced)."""

    index: int
    scenario: Scenario
    upper: float
    start: float
    replica_cost: float
    cost_cap: float | None
    settings: PlanSettings
    pools: tuple[DisaggCandidate, Bound] | None = None    # a disaggregated unit: sized by xPyD after the search


def evaluate(job: Job, probes: Probes = serial_probes) -> dict[str, Any]:
    """Search one candidate's max rate; then simulate it at its operating rate (and replications).
    ``probes`` runs each round's probes and the replications (serially, or on a pool)."""
    st = job.settings
    t0 = time.perf_counter()
    trace: list[tuple[int, float, float, float]] = []
    res = search_max_rate(job.scenario, job.upper, start=job.start, attainment=st.attainment,
                          requests=st.requests, rel_tol=st.rel_tol,
                          target_rate=st.target_rate if st.stop_when_replicas_decided else None,
                          replica_cost=job.replica_cost, cost_cap=job.cost_cap, trace=trace,
                          points=st.search_points, probes=probes)
    out: dict[str, Any] = {"index": job.index, "status": res.status, "reason": res.reason, "max_rate": res.max_rate,
                           "bracket": [res.lo, res.hi], "evaluations": res.evaluations,
                           "replicas_needed": res.replicas_needed, "trace": trace}
    if res.status == "ok" and job.pools is not None:
        c, bound = job.pools
        x, y, p, n = match_pools(job.scenario, c, bound, res.max_rate, target_rate=st.target_rate,
                                 requests=st.requests, attainment=st.attainment, rel_tol=st.rel_tol, probes=probes)
        sized = c.sized(x, y)
        out.update(replicas=x + y, pools=[x, y], gpus=sized.gpus, operating_rate=st.target_rate, ttft_p99=p.ttft_p99,
                   tpot_p99=p.tpot_p99, slo_attainment=p.slo_attainment, stable=p.stable,
                   evaluations=res.evaluations + n, label=sized.label(), deployment=sized.deployment())
        if not p.feasible(st.attainment):
            out.update(status="unreachable", reason=f"{p.binding()} binds: {x} prefill + {y} decode replicas "
                       f"miss the {st.attainment:.1%} attainment at {st.target_rate:g} req/s "
                       f"({p.slo_attainment:.1%} met)")
    elif res.status == "ok":
        replicas = math.ceil(st.target_rate / res.max_rate)
        op = st.target_rate / replicas
        window = min_window(job.scenario, st.rel_tol)
        p = probes([ProbeTask(job.scenario, op, st.requests, None, window)])[0]
        out.update(replicas=replicas, operating_rate=op, ttft_p99=p.ttft_p99, tpot_p99=p.tpot_p99,
                   slo_attainment=p.slo_attainment, stable=p.stable, evaluations=res.evaluations + 1)
        if st.replications:
            seeds = [job.scenario.seed + 1 + i for i in range(st.replications)]   # fresh seeds: not the search's
            reps = probes([ProbeTask(job.scenario, op, st.requests, seed, window) for seed in seeds])
            hits = sum(p.feasible(st.attainment) for p in reps)
            lo, hi = wilson_interval(hits, len(seeds))
            out.update(p_meet_slo=hits / len(seeds), p_meet_slo_ci=[lo, hi], replication_seeds=seeds)
    out["wall_s"] = time.perf_counter() - t0
    return out


def _price(p: PriceEntry | None) -> dict[str, Any] | None:
    return None if p is None else {"provider": p.provider, "kind": p.kind, "usd_per_gpu_hour": p.usd_per_gpu_hour,
                                   "date": p.date, "source": p.source}


def _row_types(row: dict[str, Any]) -> str:
    """The GPU types of a plan's row, as :meth:`.candidates.Candidate.gpu_types` spells them."""
    d = row["deployment"]
    return "+".join(sorted({d["gpu"], d.get("prefill", {}).get("gpu", d["gpu"])}))


class PlanRun:
    """State of one planner run: rows, rejections, bests so far, pruned candidates, counters."""

    def __init__(self, st: PlanSettings, kept: list[Screened], rejected: list[dict[str, Any]], mean_out: float,
                 progress: Callable[[int, int], None] | None) -> None:
        self.st, self.kept, self.rejected, self.mean_out, self.progress = st, kept, rejected, mean_out, progress
        self.rows: list[dict[str, Any]] = []
        self.best_cost = math.inf                    # cheapest priced plan, $/h
        self.best_gpus: dict[str, int] = {}          # fewest GPUs of a plan, per GPU types (Candidate.gpu_types)
        self.pruned_list: list[tuple[Screened, int, str, int]] = []   # (candidate, GPUs at best, how, index)
        self.searched = self.pruned = self.sims = 0
        self.start = 0                               # first candidate of kept that search_all has not run

    # -- pruning -------------------------------------------------------------------------------
    def cap(self, k: Screened) -> float | None:
        """The most a candidate's plan may cost (dollars, or GPUs when unpriced); None: no cap yet."""
        return self.cap_of(k.priced, k.candidate.gpu_types())

    def cap_of(self, priced: bool, types: str) -> float | None:
        """The cap of a candidate on GPU ``types`` (``a`` or ``a+b``). Unpriced, it is in GPUs: against
        plans on the same types, and for pools on two types also against plans on either type alone."""
        if self.st.exhaustive:
            return None
        if priced:
            return self.st.prune_factor * self.best_cost if math.isfinite(self.best_cost) else None
        keys = [types] + (types.split("+") if "+" in types else [])
        best = min((self.best_gpus[t] for t in keys if t in self.best_gpus), default=None)
        return None if best is None else self.st.prune_factor * best

    def _tick(self) -> None:
        if self.progress:
            self.progress(self.searched + self.pruned, len(self.kept))

    def prune_rest(self, queue: list[int]) -> list[int]:
        keep = []
        for i in queue:
            k = self.kept[i]
            limit = self.cap(k)
            cost = k.min_cost_per_hour if k.priced else k.min_gpus
            if limit is not None and cost is not None and cost > limit:
                self.pruned_list.append((k, k.min_gpus, "bound", i))
                self.pruned += 1
                self._tick()
            else:
                keep.append(i)
        return keep

    def job(self, i: int) -> Job:
        k = self.kept[i]
        unit = k.replica_cost if k.priced else float(k.candidate.gpus)
        pools = (k.candidate, k.bound) if isinstance(k.candidate, DisaggCandidate) else None
        return Job(i, k.scenario, k.bound.rate, k.bound.start, unit, self.cap(k), self.st,   # type: ignore[arg-type]
                   pools)

    def finish_pruned(self) -> list[dict[str, Any]]:
        """The pruned candidates as rejections, measured against the final best plans."""
        out = []
        best_row = next((r for r in self.rows if r["cost_per_hour"] is not None), None)
        for k, gpus, how, _ in self.pruned_list:
            c = k.candidate
            unit = "units" if isinstance(c, DisaggCandidate) else "replicas"
            what = ("best case" if how == "bound" else "even at its highest possible rate") + \
                f" {gpus // c.gpus} {unit} = {gpus} GPUs"
            if k.priced and best_row is not None:
                cost = gpus // c.gpus * k.replica_cost   # type: ignore[operator]
                detail = (f"{what} cost ${cost:.2f}/h, more than {self.st.prune_factor:g}x the best plan "
                          f"(${best_row['cost_per_hour']:.2f}/h, {best_row['candidate']})")
            else:
                types = c.gpu_types()
                keys = [types] + (types.split("+") if "+" in types else [])
                best = min((r for r in self.rows if _row_types(r) in keys), key=lambda r: r["gpus"])
                detail = (f"{what}, more than {self.st.prune_factor:g}x the {best['gpus']} GPUs of the smallest "
                          f"{_row_types(best)} plan ({best['candidate']})")
            out.append(rejection(c, "pruned by cost", detail))
        return out

    # -- results -------------------------------------------------------------------------------
    def accept(self, k: Screened, r: dict[str, Any], i: int) -> None:
        st, c = self.st, k.candidate
        self.searched += 1
        self.sims += r["evaluations"] + (st.replications if "p_meet_slo" in r else 0)
        if r["status"] == "pruned":
            self.pruned_list.append((k, (r["replicas_needed"] or 0) * c.gpus, "search", i))
            return
        if r["status"] != "ok":
            self.rejected.append(rejection(c, "SLO unreachable at any rate", r["reason"]))
            return
        gpus = r.get("gpus", r["replicas"] * c.gpus)
        if st.max_gpus is not None and gpus > st.max_gpus:
            self.rejected.append(rejection(c, "exceeds --max-gpus", f"serves {r['max_rate']:.3g} req/s per replica: "
                                           f"{st.target_rate:g} req/s needs {r['replicas']} replicas = {gpus} GPUs "
                                           f"> {st.max_gpus}") | {"gpus_needed": gpus})
            return
        counts = c.sized(*r["pools"]).gpu_counts() if isinstance(c, DisaggCandidate) else {c.gpu: gpus}
        cost = k.cost_per_hour(counts)
        if cost is not None:
            self.best_cost = min(self.best_cost, cost)
        types = c.gpu_types()
        self.best_gpus[types] = min(self.best_gpus.get(types, gpus), gpus)
        per_m = None if cost is None else cost / (st.target_rate * self.mean_out * 3600.0) * 1e6
        layout = "disaggregated" if isinstance(c, DisaggCandidate) else "wide_ep" if isinstance(c, EPCandidate) \
            else "aggregated"
        row = {"candidate": r.get("label", c.label()), "layout": layout,
               "deployment": r.get("deployment", c.deployment()), "max_rate_per_replica": r["max_rate"],
               "rate_bracket": r["bracket"], "replicas": r["replicas"], "gpus": gpus, "cost_per_hour": cost,
               "cost_per_million_output_tokens": per_m,
               "ttft_p99": r["ttft_p99"], "tpot_p99": r["tpot_p99"], "slo_attainment": r["slo_attainment"],
               "stable": r["stable"], "operating_rate_per_replica": r["operating_rate"],
               "evaluations": r["evaluations"], "price": _price(k.price)}
        if k.prefill_price is not None:
            row["prefill_price"] = _price(k.prefill_price)
        for key in ("p_meet_slo", "p_meet_slo_ci", "replication_seeds"):
            if key in r:
                row[key] = r[key]
        self.rows.append(row)

    def commit(self, i: int, r: dict[str, Any]) -> None:
        """Take candidate ``i``'s result as a one-worker run would have: pruned by bound if the cap of
        the plans committed before it prunes it, else its search replayed under that cap."""
        k = self.kept[i]
        limit = self.cap(k)
        cost = k.min_cost_per_hour if k.priced else k.min_gpus
        if limit is not None and cost is not None and cost > limit:
            self.pruned_list.append((k, k.min_gpus, "bound", i))
            self.pruned += 1
        else:
            unit = k.replica_cost if k.priced else float(k.candidate.gpus)
            cut = replay(r["trace"], self.st.target_rate, unit, limit) if self.st.stop_when_replicas_decided \
                else None
            if cut is not None:
                r = {"status": "pruned", "evaluations": cut.evaluations, "replicas_needed": cut.replicas_needed}
            self.accept(k, r, i)
        self._tick()

    def search_all(self, more: Callable[[], list[Screened]] | None = None) -> None:
        """Search every kept candidate not pruned on the way, committed in candidate order; then, with
        ``more``, the candidates it gives once those are done (:mod:`.mixed` pairs, screened against
        the cap the first ones left), on the same workers.

        With one local worker everything runs here. Otherwise up to ``st.workers`` candidate
        searches are in flight (dispatched ahead under the cap known so far, each driven by a thread
        of this process) and every simulation they need -- the ``st.search_points`` probes of a
        search round, the run at the operating rate, xPyD matching, replications -- goes to the
        ``st.workers`` worker processes (or Ray tasks), so a round's probes run at once and a
        candidate's single runs overlap the next candidate's rounds. Results are committed in
        candidate order under the cap a one-worker run would have had (:meth:`commit`), and the
        probed rates depend on ``search_points`` only, so plans, rejections and counts do not
        depend on the workers.
        """
        st = self.st
        if st.workers == 1 and st.executor == "local":
            with plan_executor("local", 1, evaluate) as submit:
                self._phases(submit, more)
        else:
            with plan_executor(st.executor, st.workers, run_probe) as submit_probe, \
                    ThreadPoolExecutor(st.workers, thread_name_prefix="plan-candidate") as threads:
                def probes(tasks: list[ProbeTask]) -> list[Probe]:
                    return [f.result() for f in [submit_probe(t) for t in tasks]]
                self._phases(lambda job: threads.submit(evaluate, job, probes), more)
        self.pruned_list.sort(key=lambda p: p[3])

    def _phases(self, submit: Callable[[Job], Future], more: Callable[[], list[Screened]] | None) -> None:
        self._in_flight(submit)
        if more is not None:
            self.kept += more()
            self._in_flight(submit)

    def _in_flight(self, submit: Callable[[Job], Future]) -> None:
        queue = list(range(self.start, len(self.kept)))
        self.start = len(self.kept)
        running: dict[Future, int] = {}
        done: dict[int, dict[str, Any]] = {}
        order: list[int] = []
        while queue or running or order:
            while order and order[0] in done:
                i = order.pop(0)
                self.commit(i, done.pop(i))
            queue = self.prune_rest(queue)
            while queue and len(running) < self.st.workers:
                i = queue.pop(0)
                order.append(i)
                running[submit(self.job(i))] = i
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                done[running.pop(f)] = f.result()
