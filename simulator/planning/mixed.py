"""Disaggregated pools on two GPU types: prefill on one, decode on another.

A unit of pools costs about ``price_P / prefill_rate_P + price_D / decode_rate_D`` dollars per
request/s, so pairing the GPU with the cheapest prefill (FLOPs per dollar) with the one with the
cheapest decode (memory bandwidth and capacity per dollar) can beat both same-type pairs.

Pairs are made only of pools that passed their own screening (:class:`.pools.PoolScreen`: the pool
fits, and meets its SLO on an idle replica -- TTFT for prefill, TPOT for decode), after the
same-type candidates have been searched, so their bounds are computed once per pool and shared:

* both pools run the deployment's weight and KV dtypes (the engine's pools have no dtype of their
  own, and the KV link carries ``kv_bytes_per_token(kv_dtype)``: the decode side's format is the
  prefill side's), on GPUs of one vendor, each pool with its own TP, at most
  ``max_gpus_per_replica`` GPUs per 1P+1D unit, the KV link ``link_gbps`` per prefill replica;
* both GPUs priced, or both unpriced (then ranked by GPUs, as the planner does);
* a pair whose best case (``ceil(R / bound)`` units) exceeds ``--max-gpus`` or the planner's cost cap
  at that point (:meth:`.plan_run.PlanRun.cap_of`: ``prune_factor`` times the cheapest plan; unpriced,
  times the fewest GPUs of a plan on either of its GPU types) is counted, not searched or listed.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from ..catalog.gpus import load_gpu
from ..config.loader import scenario_from_dict
from .candidates import Screened, Space
from .layouts import DisaggCandidate
from .pools import PoolScreen
from .prices import PriceBook, PriceEntry

#: cap(priced, gpu_types) -> the most a plan may cost (dollars, or GPUs unpriced); None: no cap.
Cap = Callable[[bool, str], "float | None"]


@dataclass
class MixedCounts:
    """What became of the mixed-GPU pairs: made of passing pools, over --max-gpus, over the cost cap, queued."""

    pairs: int = 0
    over_max_gpus: int = 0
    over_cap: int = 0
    queued: int = 0


@dataclass(frozen=True)
class Offer:
    """Where the pairs come from: the planner's price book and price choice, target rate and GPU limit."""

    book: PriceBook
    price_kind: str
    provider: str | None
    target_rate: float
    max_gpus: int | None


def pair_candidates(space: Space, gpus: list[str]) -> list[DisaggCandidate]:
    """Every prefill GPU x decode GPU of one vendor (two types), TP pair, dtype and batch size, at PP 1
    (the chunk is the largest ``max_batched_tokens``, as for same-type pools)."""
    chunk = max(space.max_batched_tokens)
    vendor = {g: load_gpu(g).vendor for g in gpus}
    out: list[DisaggCandidate] = []
    for pg, dg, dt, ptp, dtp, mb in itertools.product(gpus, gpus, space.weight_dtypes, space.tp, space.tp,
                                                      space.max_batch_sizes):
        if pg != dg and vendor[pg] == vendor[dg] and ptp + dtp <= space.max_gpus_per_replica and mb <= chunk:
            out.append(DisaggCandidate(dg, dtp, 1, dt, mb, chunk, prefill_gpu=pg, prefill_tp=ptp,
                                       link_gbps=space.link_gbps))
    return out


def _cost(unit: DisaggCandidate, units: int, pre: PriceEntry | None, dec: PriceEntry | None) -> float | None:
    if pre is None or dec is None:
        return None
    # as Screened.min_cost_per_hour adds it up, so that the cap compares the same number
    return sum(n * units * (dec if g == unit.gpu else pre).usd_per_gpu_hour for g, n in unit.gpu_counts().items())


def mixed_screened(pools: PoolScreen, cands: list[DisaggCandidate], offer: Offer, cap: Cap
                   ) -> tuple[list[Screened], MixedCounts]:
    """The pairs of ``cands`` whose pools both passed, priced alike, within --max-gpus and the cap,
    as search units ready to search; and the counts of what was left out."""
    out: list[Screened] = []
    n = MixedCounts()
    for c in cands:
        pre, dec = pools.check(c, "prefill"), pools.check(c, "decode")
        if not (pre.passes("prefill", pools.attainment) and dec.passes("decode", pools.attainment)):
            continue
        pp = offer.book.find(c.prefill_gpu, offer.price_kind, offer.provider)
        dp = offer.book.find(c.gpu, offer.price_kind, offer.provider)
        if (pp is None) != (dp is None):
            continue
        n.pairs += 1
        unit, bound = pools.unit(c, pre, dec)
        units = math.ceil(offer.target_rate / bound.rate)
        if offer.max_gpus is not None and units * unit.gpus > offer.max_gpus:
            n.over_max_gpus += 1
            continue
        limit = cap(dp is not None, unit.gpu_types())
        best_case = _cost(unit, units, pp, dp) if dp is not None else units * unit.gpus
        if limit is not None and best_case is not None and best_case > limit:
            n.over_cap += 1
            continue
        s = scenario_from_dict(pools.data, unit.overrides())
        out.append(Screened(unit, s, dp, bound, units, PoolScreen.shares(pre, dec), prefill_price=pp))
    n.queued = len(out)
    return out, n
