"""Self-hosting versus API cost for a scenario's workload, and the break-even daily volume.

Self-hosting: a replica serves at most ``C`` tokens a day within the SLOs (C = its highest
feasible rate from :func:`.search.search_max_rate` × tokens per request × 86,400). Serving ``V``
tokens a day takes ``max(24, ceil(24·V/C))`` replica-hours: replicas are paid by the whole hour
and one is always on. A replica-hour costs the GPUs' rental price (plus, optionally, energy:
TDP × busy fraction × $/kWh). API: ``V`` tokens a day in the workload's input/output mix
(cached input at the cached price) at the provider's per-token prices.

Break-even: with ``a`` the API's dollars per token and ``p`` a replica-hour's price, one always-on
replica costs ``24·p`` a day, so self-hosting is cheaper from ``V = 24·p / a``, provided that is
within one replica's capacity ``C``; otherwise it never is (a replica's tokens cost more than the
API's even at full load). Just past whole multiples of ``C``, a new replica-hour can make the API
briefly cheaper again when ``a·C/(24·p)`` is under 25/24; ``stays_cheaper_from`` accounts for that.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .rows import prefix_cache_hit_rate

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Mix:
    """Mean tokens per request: prompt (input), output, and the share of the prompt read from a cache."""

    prompt_tokens: float
    output_tokens: float
    cached_share: float = 0.0

    @property
    def tokens(self) -> float:
        return self.prompt_tokens + self.output_tokens

    @property
    def output_share(self) -> float:
        return self.output_tokens / self.tokens


#: Most replicas a self-hosting bill is computed for (beyond it the inputs are almost surely a typo).
MAX_REPLICAS = 1_000_000


def parse_volume(text: str | float) -> float:
    """Tokens per day from ``2e9``, ``500M``, ``2B``/``2G``, ``300k`` (case-insensitive)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*", str(text), re.IGNORECASE)
    if not m:
        raise InputError("--volume", text, "give tokens per day, e.g. 2e9, 500M, 2B or 300k")
    v = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}[m.group(2).lower()]
    if v <= 0 or not math.isfinite(v):
        raise InputError("--volume", text, "must be more than 0 and finite tokens per day")
    return v


def replica_hours(volume: float, capacity: float, min_replicas: int = 1) -> int:
    """Whole replica-hours a day to serve ``volume`` tokens/day at ``capacity`` tokens/day per replica."""
    if capacity <= 0:
        raise InputError("capacity", capacity, "a replica must serve more than 0 tokens a day")
    if not 24.0 * volume / capacity <= 24 * MAX_REPLICAS:
        raise InputError("capacity", capacity, f"serving {volume:.3g} tokens a day would take more than "
                                               f"{MAX_REPLICAS:,} replicas; check the volume and the rate per replica")
    return max(24 * min_replicas, math.ceil(24.0 * volume / capacity - 1e-9))


def self_host_daily_cost(volume: float, capacity: float, replica_cost_per_hour: float) -> float:
    """Dollars a day to self-host ``volume`` tokens/day (see the module docstring)."""
    return replica_hours(volume, capacity) * replica_cost_per_hour


def break_even(api_cost_per_token: float, replica_cost_per_hour: float, capacity: float) -> dict[str, float | None]:
    """Daily volume (tokens) from which self-hosting is cheaper than the API.

    ``first``: the smallest volume where it is (None: never); ``stays_cheaper_from``: the volume
    from which it is cheaper at every larger volume (whole-hour billing can open small gaps).
    """
    if api_cost_per_token <= 0:
        return {"first": None, "stays_cheaper_from": None}
    u = api_cost_per_token * capacity / (24.0 * replica_cost_per_hour)
    if u <= 1.0:
        return {"first": None, "stays_cheaper_from": None}
    first = 24.0 * replica_cost_per_hour / api_cost_per_token
    k_gap = math.ceil(u / (u - 1.0)) - 1          # largest k (replica-hours) with a gap before it
    stays = max(first, replica_cost_per_hour * k_gap / api_cost_per_token) if k_gap >= 25 else first
    return {"first": first, "stays_cheaper_from": stays}


def api_cost_per_token(price: Any, mix: Mix, batch: bool = False) -> float:
    """Dollars per token (input and output together, in the mix's proportions) of an :class:`ApiPrice`."""
    return price.per_request(mix.prompt_tokens, mix.output_tokens, mix.cached_share, batch) / mix.tokens


def workload_mix(summary: dict[str, Any], cached_share: float | None = None) -> Mix:
    """The mean prompt/output tokens per completed request of a run, and its prefix-cache hit share
    (``cached_share`` when given, else the summary's when it reports one, else 0)."""
    reqs = summary.get("throughput_requests_per_s") or 0.0
    if reqs <= 0:
        raise InputError("scenario", summary.get("scenario"), "the simulated run completed no requests")
    hit = cached_share if cached_share is not None else (prefix_cache_hit_rate(summary) or 0.0)
    if not 0.0 <= hit <= 1.0:
        raise InputError("--cache-hit-rate", hit, "must be between 0 and 1")
    return Mix(summary["throughput_input_tokens_per_s"] / reqs, summary["throughput_output_tokens_per_s"] / reqs, hit)


def energy_cost_per_hour(gpu: Any, gpus: int, busy_fraction: float, kwh_price: float) -> float:
    """Dollars an hour of electricity: TDP (kW) × GPUs × busy fraction × $/kWh."""
    if kwh_price < 0:
        raise InputError("--kwh-price", kwh_price, "must be >= 0 dollars per kWh")
    if gpu.tdp_w is None:
        raise InputError("--kwh-price", kwh_price, f"{gpu.name} has no TDP in its profile; energy cannot be priced")
    return gpu.tdp_w.value / 1000.0 * gpus * busy_fraction * kwh_price


def compare(mix: Mix, volume: float, capacity: float, replica_cost_per_hour: float,
            api: list[Any], batch: bool = False) -> dict[str, Any]:
    """Both bills at ``volume`` tokens/day: self-hosting (replica-hours, $/day, $/M tokens) and per
    API model ($/day, $/M tokens, break-even volume)."""
    hours = replica_hours(volume, capacity)
    day = hours * replica_cost_per_hour
    full = 24.0 * replica_cost_per_hour / capacity * 1e6
    out: dict[str, Any] = {
        "volume_tokens_per_day": volume, "mix": {"prompt_tokens": mix.prompt_tokens, "output_tokens": mix.output_tokens,
                                                 "cached_share": mix.cached_share},
        "self_host": {"capacity_tokens_per_day_per_replica": capacity, "replica_hours_per_day": hours,
                      "replica_cost_per_hour": replica_cost_per_hour, "cost_per_day": day,
                      "usd_per_million_tokens": day / volume * 1e6,
                      "usd_per_million_output_tokens": day / (volume * mix.output_share) * 1e6,
                      "usd_per_million_tokens_at_full_load": full},
        "api": []}
    for p in api:
        entry: dict[str, Any] = {"model": p.model, "provider": p.provider, "source": p.source, "date": p.date,
                                 "input_per_mtok": p.input_per_mtok, "cached_input_per_mtok": p.cached_input_per_mtok,
                                 "output_per_mtok": p.output_per_mtok}
        modes = [False] + ([True] if batch and p.batch_input_per_mtok is not None else [])
        for b in modes:
            a = api_cost_per_token(p, mix, b)
            key = "batch" if b else "standard"
            entry[key] = {"cost_per_day": a * volume, "usd_per_million_tokens": a * 1e6,
                          "usd_per_million_output_tokens": a * 1e6 / mix.output_share,
                          "break_even_tokens_per_day": break_even(a, replica_cost_per_hour, capacity)}
        if batch and p.batch_input_per_mtok is None:
            entry["batch"] = None
        out["api"].append(entry)
    return out


def replica_capacity(scenario: Any, attainment: float, requests: int, rel_tol: float = 0.05) -> dict[str, Any]:
    """The highest rate (requests/s) one replica of the scenario's deployment serves within its SLOs."""
    from ..engine.simulate import build_step_model
    from ..perf.memory import memory_plan
    from ..workload.generate import generate
    from .search import at_rate, check_rate_workload, search_max_rate, throughput_bound

    check_rate_workload(scenario)
    s = at_rate(scenario, scenario.workload.arrival.rate, requests)
    sm = build_step_model(s)
    d = s.deployment
    mp = memory_plan(sm.model, sm.gpu, d.weight_dtype, d.kv_dtype, d.tp, d.pp,
                     gpu_memory_utilization=d.kv_cache.gpu_memory_utilization,
                     max_batched_tokens=d.batching.max_batched_tokens)
    table = generate(s.workload, s.seed)
    kv = d.kv_cache.num_blocks * d.kv_cache.block_size if d.kv_cache.num_blocks else mp.kv_tokens
    b = throughput_bound(s, sm, kv, float(table.prompt_tokens.mean()), float(table.output_tokens.mean()))
    res = search_max_rate(s, b.rate, start=b.start, attainment=attainment, requests=requests, rel_tol=rel_tol)
    if res.status != "ok":
        raise InputError("slo", scenario.slo.model_dump(exclude_none=True),
                         f"one replica of this deployment cannot meet it at any rate ({res.reason}); "
                         f"loosen the SLO or change the deployment")
    return {"rate": res.max_rate, "bracket": [res.lo, res.hi], "evaluations": res.evaluations}


def cost_report(scenario: Any, *, api_models: list[str], volume: float | None = None, prices_file: str | None = None,
                price_kind: str = "on-demand", provider: str | None = None, api_prices_file: str | None = None,
                kwh_price: float | None = None, attainment: float = 0.99, requests: int = 400,
                rate_per_replica: float | None = None, cached_share: float | None = None,
                batch: bool = False) -> dict[str, Any]:
    """Self-hosting the scenario's deployment versus the given API models (see the module docstring).

    The scenario is simulated as given for its token mix and busy fraction; a replica's capacity is
    ``rate_per_replica`` (requests/s) when given, else found by bisection at ``attainment``.
    ``volume`` defaults to the scenario's own load (arrival rate × tokens per request × 86,400).
    """
    from ..catalog.gpus import load_gpu
    from ..engine.simulate import simulate
    from ..metrics.summary import summarize
    from .api_prices import api_price, load_api_overrides
    from .prices import load_prices

    overrides = load_api_overrides(api_prices_file)
    book = load_prices(prices_file)
    d = scenario.deployment
    offer = book.offer(d.gpu, price_kind, provider)
    gpus = d.tp * d.pp
    summary = summarize(simulate(scenario))
    mix = workload_mix(summary, cached_share)
    prices = [api_price(m, prompt_tokens=mix.prompt_tokens, overrides=overrides) for m in api_models]
    if rate_per_replica is not None:
        if rate_per_replica <= 0:
            raise InputError("--rate-per-replica", rate_per_replica, "must be more than 0 requests/s")
        cap = {"rate": rate_per_replica, "bracket": None, "evaluations": 0, "from": "--rate-per-replica"}
    else:
        cap = {**replica_capacity(scenario, attainment, requests), "from": f"bisection at {attainment:.1%} attainment"}
    capacity = cap["rate"] * mix.tokens * SECONDS_PER_DAY
    rate = getattr(scenario.workload.arrival, "rate", None)
    if volume is None:
        volume = (rate if rate else summary["throughput_requests_per_s"]) * mix.tokens * SECONDS_PER_DAY
    replica_cost = offer.usd_per_gpu_hour * gpus
    energy = 0.0
    if kwh_price is not None:
        energy = energy_cost_per_hour(load_gpu(d.gpu), gpus, float(summary["busy_fraction"]), kwh_price)
    out = compare(mix, volume, capacity, replica_cost + energy, prices, batch)
    out["self_host"].update({"gpu": d.gpu, "gpus_per_replica": gpus, "rate_per_replica": cap["rate"],
                             "rate_bracket": cap["bracket"], "capacity_from": cap["from"],
                             "energy_cost_per_hour": energy, "busy_fraction": summary["busy_fraction"],
                             "price": offer.model_dump(exclude_none=True)})
    out["model"] = scenario.model
    out["slo"] = scenario.slo.model_dump()
    return out
