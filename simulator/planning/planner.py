"""``servesim plan``: the cheapest deployments that serve a target rate within the SLOs.

For every candidate (GPU × TP × PP × dtype × batching limits) that passes the cheap checks of
:mod:`.candidates`, bisection (:mod:`.search`) finds the highest rate one replica serves while
stable with the target SLO attainment; replicas = ceil(target / that rate). Candidates are
simulated cheapest-best-case first, and one whose best case (the throughput bound) costs more
than ``prune_factor`` times the cheapest plan found so far is not simulated. GPUs without a price
of the chosen kind are candidates too: simulated, ranked after the priced plans by GPU count, and
pruned against the fewest GPUs of a plan on the same GPU type (same price per GPU, whatever it is).
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..catalog.engines import load_engine
from ..catalog.models import load_model
from ..config.scenario import Scenario
from ..errors import InputError
from .candidates import CANDIDATE_KINDS, Candidate, Screened, Space, default_gpus, screen
from .excluded import binding_limit, excluded_lines
from .layouts import DisaggCandidate, disaggregated_candidates, wide_ep_candidates
from .mixed import MixedCounts, Offer, mixed_screened, pair_candidates
from .plan_run import PlanRun
from .plan_settings import PlanSettings
from .pools import PoolScreen, screen_disaggregated
from .prices import PriceBook, load_prices
from .search import at_rate, check_rate_workload

__all__ = ["PlanSettings", "pareto_front", "plan"]

KINDS = {**CANDIDATE_KINDS, "disaggregated": disaggregated_candidates, "wide_ep": wide_ep_candidates}


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


def _space(st: PlanSettings, moe: bool) -> Space:
    per_replica = min(8, st.max_gpus) if st.max_gpus else 8
    return Space(st.gpus, st.tp, st.pp, st.weight_dtypes, st.max_batch_sizes, st.max_batched_tokens, per_replica,
                 st.link_gbps, moe)


def _screen_all(base: Scenario, cands: list[Candidate], book: PriceBook, st: PlanSettings, pools: PoolScreen
                ) -> tuple[list[Screened], list[dict[str, Any]]]:
    """Cheap checks: colocated replicas (aggregated, wide EP) and disaggregated pools, each their own way."""
    disagg = [c for c in cands if isinstance(c, DisaggCandidate)]
    colocated = [c for c in cands if not isinstance(c, DisaggCandidate)]
    args = {"target_rate": st.target_rate, "attainment": st.attainment, "prompt": pools.prompt,
            "output": pools.output, "price_kind": st.price_kind, "provider": st.provider, "max_gpus": st.max_gpus}
    kept, rejected = screen(base, colocated, book, **args)
    k2, r2 = screen_disaggregated(base, disagg, book, pools=pools, **args)
    return kept + k2, rejected + r2


def _search_order(k: Screened) -> tuple[Any, ...]:
    """Cheapest best case first (priced before unpriced), then by GPU type and GPUs."""
    return (not k.priced, k.min_cost_per_hour or 0.0, k.candidate.gpu, k.min_gpus, -k.bound.rate)


def _mixed_pairs(st: PlanSettings, space: Space, book: PriceBook, pools: PoolScreen, ctx: PlanRun,
                 counts: MixedCounts) -> Callable[[], list[Screened]] | None:
    """The search's second phase: pools on two GPU types, made once the same-type candidates are
    done, under the cap they left (:mod:`.mixed`); ``counts`` gets what became of the pairs."""
    if "disaggregated" not in st.kinds or not st.mixed_pools:
        return None

    def pairs() -> list[Screened]:
        gpus = list(space.gpus) if space.gpus is not None else default_gpus(book.gpus(st.price_kind))
        offer = Offer(book, st.price_kind, st.provider, st.target_rate, st.max_gpus)
        more, n = mixed_screened(pools, pair_candidates(space, gpus), offer, ctx.cap_of)
        vars(counts).update(dataclasses.asdict(n))
        return sorted(more, key=_search_order)
    return pairs


def layout_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Which layout the best plan has, and how it compares with the best aggregated plan (cost, else GPUs)."""
    if not rows:
        return None
    best = rows[0]
    agg = next((r for r in rows if r["layout"] == "aggregated"), None)
    other = next((r for r in rows if r["layout"] != "aggregated"), None)
    out: dict[str, Any] = {"winner": best["layout"], "best": best["candidate"],
                           "best_aggregated": agg and agg["candidate"], "best_other": other and other["candidate"]}
    key = "cost_per_hour" if best["cost_per_hour"] is not None else "gpus"
    if agg is not None and other is not None and agg[key] is not None and other[key] is not None:
        out.update(compared_by=key, aggregated=agg[key], other=other[key], other_layout=other["layout"],
                   ratio=other[key] / agg[key])
    return out


def plan(base: Scenario, st: PlanSettings, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Rank the candidates that serve ``st.target_rate`` (see the module docstring).

    Returns ``plans`` (priced ones cheapest first, then the unpriced by GPUs), ``pareto`` (cost vs
    p99 TTFT/TPOT front of the priced plans), ``rejected`` (candidate, reason, detail), ``excluded``
    (one line per GPU without a plan, and per GPU without a price), ``counts`` and ``binding`` (why
    nothing qualified, else None). ``progress(done, total)`` counts screened-in candidates searched
    or pruned, so it ends at ``total``.
    """
    from ..workload.generate import generate

    t0 = time.perf_counter()
    check_rate_workload(base)
    arch = load_model(base.model)          # an unknown model or engine is one error, not a rejection per candidate
    load_engine(base.deployment.engine)
    book = load_prices(st.prices_file, st.prices, st.price_kind)
    eval_s = at_rate(base, base.workload.arrival.rate, st.requests)   # type: ignore[union-attr]
    table = generate(eval_s.workload, eval_s.seed)
    mean_out = float(np.mean(table.output_tokens))
    cands: list[Candidate] = []
    for kind in st.kinds:
        cands += KINDS[kind](_space(st, arch.moe is not None), default_gpus(book.gpus(st.price_kind)))
    if not cands:
        raise InputError("--gpus", list(st.gpus or ()), "no candidates: give GPUs, or a wider space")
    pools = PoolScreen(eval_s, table.prompt_tokens, table.output_tokens, st.attainment)
    kept, rejected = _screen_all(eval_s, cands, book, st, pools)
    kept.sort(key=_search_order)
    screen_s = time.perf_counter() - t0
    ctx = PlanRun(st, kept, rejected, mean_out, progress)
    mixed = MixedCounts()
    ctx.search_all(_mixed_pairs(st, _space(st, arch.moe is not None), book, pools, ctx, mixed))
    cands += [k.candidate for k in kept[len(kept) - mixed.queued:]]
    rows = ctx.rows
    rows.sort(key=lambda r: (r["cost_per_hour"] is None, r["cost_per_hour"] or 0.0, r["gpus"],
                             r["ttft_p99"] or math.inf, r["tpot_p99"] or math.inf))
    rejected += ctx.finish_pruned()
    reasons: dict[str, int] = {}
    for r in rejected:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    priced = [r for r in rows if r["cost_per_hour"] is not None]
    return {"target_rate": st.target_rate, "attainment": st.attainment, "model": base.model,
            "slo": base.slo.model_dump(), "requests_per_evaluation": st.requests, "mean_output_tokens": mean_out,
            "price_kind": st.price_kind, "plans": rows, "pareto": pareto_front(priced), "rejected": rejected,
            "layouts": layout_summary(rows), "excluded": excluded_lines(cands, rows, rejected, kept, st),
            "counts": {"candidates": len(cands), "screened_in": len(kept), "searched": ctx.searched,
                       "mixed_pairs": dataclasses.asdict(mixed),
                       "pruned_by_cost": ctx.pruned, "plans": len(rows), "rejected": reasons,
                       "simulations": ctx.sims, "screen_s": screen_s, "wall_s": time.perf_counter() - t0},
            "binding": None if rows else binding_limit(rejected, st, cands)}
