"""The highest arrival rate one replica serves within its SLOs, and cheap bounds on it.

* :func:`zero_load` — the share of requests that meet each SLO on an idle replica (prefill alone,
  then decoding alone); if it is below the attainment target, no rate works.
* :func:`throughput_bound` — an optimistic requests/s per replica from the step model: decode at
  the largest batch that fits (``max_batch_size`` and KV capacity) and prefill in full chunks,
  whichever is slower, times a slack factor (1.25) for what the averages miss.
* :func:`search_max_rate` — bisection on the rate between 0 and that bound (or, with ``points`` > 1,
  a k-ary search probing ``points`` evenly spaced rates per round, which ``probes`` may simulate in
  parallel): a rate is *feasible* when the simulated run is stable and its SLO attainment reaches
  the target. Every probe uses the same seed, so arrival times at rate r are the same unit-rate
  draws scaled by 1/r (common random numbers): the outcome moves smoothly with the rate and the
  bracket closes cleanly.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config.loader import scenario_from_dict
from ..config.scenario import Scenario
from ..errors import InputError
from ..perf.step import BatchShape, StepModel

BOUND_SLACK = 1.25
SLO_KEYS = ("ttft_s", "tpot_s", "e2e_s")
MAX_PROBE_REQUESTS = 50_000


def min_window(s: Scenario, rel_tol: float) -> float:
    """Seconds of arrivals a probe needs so that overload shows.

    Offered ``1 + e`` times what a replica serves, the queueing delay grows by about ``e`` seconds
    per second, so it passes the TTFT SLO (else the end-to-end SLO, at least 1 s) after
    ``slo / e`` seconds. A window of ``slo / rel_tol`` makes an overload larger than the
    bisection's tolerance show up as missed SLOs instead of hiding in a short run.
    """
    slo = s.slo.ttft_s if s.slo.ttft_s is not None else (s.slo.e2e_s or 0.0)
    return max(1.0, slo) / rel_tol


def probe_requests(rate: float, requests: int, window_s: float | None) -> int:
    """Requests for a probe at ``rate``: at least ``requests`` and at least ``window_s`` seconds of arrivals."""
    if not window_s:
        return requests
    return int(min(MAX_PROBE_REQUESTS, max(requests, math.ceil(rate * window_s))))


def check_rate_workload(s: Scenario) -> None:
    """Planning varies ``workload.arrival.rate``: the arrival process must have a constant rate."""
    arr = s.workload.arrival
    if getattr(arr, "rate", None) is None:
        raise InputError("workload.arrival", arr.process, "planning needs a constant arrival rate: "
                                                         "process poisson, gamma or constant with rate:")


def at_rate(s: Scenario, rate: float, requests: int | None = None, seed: int | None = None) -> Scenario:
    """The scenario for one replica at ``rate`` requests/s (and ``requests``, ``seed`` when given)."""
    data = s.model_dump(mode="json", exclude_none=True)
    over: dict[str, Any] = {"workload.arrival.rate": float(rate), "deployment.replicas": 1}
    if requests is not None:
        over["workload.requests"] = int(requests)
    if seed is not None:
        over["seed"] = int(seed)
    return scenario_from_dict(data, over)


@dataclass
class Probe:
    """One simulated run at one rate: attainment overall and per SLO, p99 latencies (seconds)."""

    rate: float
    requests: int
    slo_attainment: float
    stable: bool
    ttft_p99: float | None
    tpot_p99: float | None
    e2e_p99: float | None
    meets: dict[str, float]            # share of requests within each SLO alone
    output_tokens_per_s: float
    seed: int

    def feasible(self, attainment: float) -> bool:
        return self.stable and self.slo_attainment >= attainment

    def binding(self) -> str:
        """The SLO that the fewest requests meet."""
        return min(self.meets, key=lambda k: self.meets[k]) if self.meets else "stability"


def probe(s: Scenario, rate: float, requests: int | None = None, seed: int | None = None,
          window_s: float | None = None) -> Probe:
    """Simulate one replica of ``s`` at ``rate`` requests/s (``requests``, raised to cover ``window_s``)."""
    from ..engine.simulate import simulate
    from ..metrics.summary import per_request, summarize

    n = probe_requests(rate, requests or s.workload.requests or 0, window_s) if window_s else requests
    sc = at_rate(s, rate, n, seed)
    res = simulate(sc)
    df = per_request(res)
    summ = summarize(res, df)
    done = df["finished"].to_numpy()
    meets: dict[str, float] = {}
    for key in SLO_KEYS:
        limit = getattr(sc.slo, key)
        if limit is not None:
            col = df[key].to_numpy()
            ok = done & np.where(np.isnan(col), key == "tpot_s", col <= limit)
            meets[key] = float(ok.mean()) if len(ok) else 0.0
    return Probe(rate, len(df), float(summ["slo_attainment"]), bool(summ["stability"]["stable"]), summ["ttft_s"]["p99"],
                 summ["tpot_s"]["p99"], summ["e2e_s"]["p99"], meets, float(summ["throughput_output_tokens_per_s"]),
                 sc.seed)


@dataclass(frozen=True)
class ProbeTask:
    """One probe to run, possibly in another process: the arguments of :func:`probe`."""

    scenario: Scenario
    rate: float
    requests: int | None = None
    seed: int | None = None
    window_s: float | None = None


def run_probe(t: ProbeTask) -> Probe:
    """:func:`probe` of one task (module level, so a process pool can run it)."""
    return probe(t.scenario, t.rate, t.requests, t.seed, t.window_s)


def serial_probes(tasks: list[ProbeTask]) -> list[Probe]:
    """Run probe tasks one after another in this process, in order."""
    return [run_probe(t) for t in tasks]


#: Runs probe tasks and returns their probes in task order (serially, or on a pool).
Probes = Callable[[list[ProbeTask]], list[Probe]]


def _prefill_seconds(sm: StepModel, length: int, chunk: int, window: int | None) -> float:
    t, done = 0.0, 0
    while done < length:
        c = min(chunk, length - done)
        t += sm.price(BatchShape.prefill(1, c, prefix=done, window=window), exact=True)[0]
        done += c
    return t


def zero_load(s: Scenario, sm: StepModel, prompt: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """Share of requests meeting each SLO (and all of them, key ``all``) on an idle replica.

    TTFT is the prefill of the prompt alone (in ``max_batched_tokens`` chunks when chunked prefill
    is on); TPOT is a one-sequence decode step at the request's middle context.
    """
    b = s.deployment.batching
    chunk = b.max_batched_tokens if b.chunked_prefill else 10**9
    window = sm.model.sliding_window
    p, o = np.asarray(prompt, dtype=float), np.asarray(output, dtype=float)
    grid_p = np.unique(np.geomspace(1, max(2.0, p.max()), 24).round().astype(int))
    t_pre = np.array([_prefill_seconds(sm, int(n), chunk, window) for n in grid_p])
    ctx = p + o / 2
    grid_c = np.unique(np.geomspace(1, max(2.0, ctx.max()), 24).round().astype(int))
    t_dec = np.array([sm.price(BatchShape.decode(1, int(c), window=window), exact=True)[0] for c in grid_c])
    ttft = np.interp(p, grid_p, t_pre)
    tpot = np.interp(ctx, grid_c, t_dec)
    e2e = ttft + np.maximum(o - 1, 0) * tpot
    ok = np.ones(len(p), dtype=bool)
    out: dict[str, float] = {}
    for key, v in (("ttft_s", ttft), ("tpot_s", np.where(o > 1, tpot, 0.0)), ("e2e_s", e2e)):
        limit = getattr(s.slo, key)
        if limit is not None:
            meets = v <= limit
            out[key] = float(meets.mean())
            ok &= meets
    out["all"] = float(ok.mean())
    return out


@dataclass
class Bound:
    """Requests/s of one replica from the step model (see the module docstring).

    ``rate`` (the slower of decode and prefill, with slack) bounds what a replica can do and is
    what pruning uses; ``start`` (decode and prefill times added, with slack) is a closer guess
    that starts the bisection; the search raises it if it proves too low.
    """

    rate: float
    start: float
    decode_rate: float
    prefill_rate: float
    batch: int


def throughput_bound(s: Scenario, sm: StepModel, kv_tokens: int, prompt_mean: float, output_mean: float) -> Bound:
    """An upper bound (heuristic, with slack) on the requests/s one replica can complete."""
    b = s.deployment.batching
    window = sm.model.sliding_window
    resident = prompt_mean + output_mean / 2
    batch = int(max(1, min(b.max_batch_size, kv_tokens // max(resident, 1.0))))
    t_dec = sm.price(BatchShape.decode(batch, int(resident), window=window), exact=True)[0]
    decode_rate = batch / (max(output_mean, 1.0) * t_dec)
    chunk = b.max_batched_tokens if b.chunked_prefill else max(int(prompt_mean), 1)
    seq = int(max(1, min(prompt_mean, chunk)))
    seqs = max(1, chunk // seq)
    t_pre = sm.price(BatchShape.prefill(seqs, seq, window=window), exact=True)[0]
    prefill_rate = (seqs * seq / t_pre) / max(prompt_mean, 1.0)
    both = 1.0 / (1.0 / decode_rate + 1.0 / prefill_rate)
    return Bound(BOUND_SLACK * min(decode_rate, prefill_rate), BOUND_SLACK * both, decode_rate, prefill_rate, batch)


@dataclass
class Search:
    """Outcome of :func:`search_max_rate`. ``max_rate`` is the highest rate found feasible (0 if none)."""

    status: str                   # "ok" | "unreachable" | "pruned"
    max_rate: float
    lo: float
    hi: float
    evaluations: int
    reason: str = ""
    best: Probe | None = None     # the probe at max_rate
    last_bad: Probe | None = None
    replicas_needed: int | None = None   # status "pruned": replicas needed even at the highest possible rate


def _pruned(n: int, lo: float, hi: float, top: float, target_rate: float, best: Probe | None = None,
            bad: Probe | None = None) -> Search:
    need = math.ceil(target_rate / top)
    return Search("pruned", lo, lo, hi, n, f"even {top:.3g} req/s per replica needs {need} replicas, "
                  f"more than the cost cap", best, bad, need)


def replay(trace: list[tuple[int, float, float, float]], target_rate: float, replica_cost: float,
           cost_cap: float | None) -> Search | None:
    """The search pruned at the first cost check of ``trace`` that ``cost_cap`` fails, else None.

    Bisection probes do not depend on the cap, so a search run under a higher cap passed the same
    checks, in the same states, up to where this cap stops it: the outcome equals a fresh search
    under ``cost_cap`` (except the probes kept in ``best``/``bad``, which a pruned search does not report).
    """
    if cost_cap is None or not replica_cost:
        return None
    for n, lo, hi, top in trace:
        if math.ceil(target_rate / top) * replica_cost > cost_cap:
            return _pruned(n, lo, hi, top, target_rate)
    return None


def search_max_rate(s: Scenario, upper: float, *, start: float | None = None, attainment: float = 0.99,
                    requests: int = 400, rel_tol: float = 0.05, target_rate: float | None = None,
                    replica_cost: float | None = None, cost_cap: float | None = None,
                    max_evals: int = 16, trace: list[tuple[int, float, float, float]] | None = None,
                    points: int = 1, probes: Probes = serial_probes) -> Search:
    """Bisection for the highest feasible rate of one replica in the bracket (0, start or upper].

    With ``points`` > 1, each round probes ``points`` rates evenly spaced inside the bracket (run by
    ``probes``, in parallel where it can) and keeps the highest feasible one below the lowest
    infeasible one; the probed rates depend on ``points`` only, never on how ``probes`` runs them.

    Stops when ``(hi - lo) <= rel_tol * hi``; with ``target_rate``, also when ``ceil(target/lo) ==
    ceil(target/hi)`` (more bisection cannot change the replica count); with ``replica_cost`` and
    ``cost_cap``, when even the highest possible rate needs replicas costing more than ``cost_cap``
    per hour (status "pruned"). ``upper`` is trusted as a bound, ``start`` is only a first guess:
    when every probe below the bracket's top succeeds, the top is probed and doubled while feasible.
    ``trace`` collects ``(evaluations, lo, hi, top)`` at every cost check, so that :func:`replay`
    can give the outcome under a lower cap without simulating again.
    """
    if upper <= 0 or not math.isfinite(upper):
        raise InputError("upper", upper, "the rate bound must be a positive number")
    lo, hi, hi_checked = 0.0, float(min(start, upper) if start else upper), False
    window = min_window(s, rel_tol)
    best = bad = None
    n = 0
    while n < max_evals:
        top = hi if (hi_checked or hi >= upper) else upper   # a rate no feasible one exceeds
        if trace is not None:
            trace.append((n, lo, hi, top))
        if target_rate and replica_cost and cost_cap is not None \
                and math.ceil(target_rate / top) * replica_cost > cost_cap:
            return _pruned(n, lo, hi, top, target_rate, best, bad)
        if lo > 0 and hi - lo <= rel_tol * hi:
            if hi_checked:
                break
            p = probes([ProbeTask(s, hi, requests, None, window)])[0]
            n += 1
            if p.feasible(attainment):
                lo, best, hi = hi, p, hi * 2
                continue
            bad, hi_checked = p, True
            break
        if target_rate and lo > 0 and math.ceil(target_rate / lo) == math.ceil(target_rate / top):
            break
        rates = [(lo + hi) / 2] if points == 1 else [lo + (hi - lo) * j / (points + 1) for j in range(1, points + 1)]
        if lo == 0 and rates[-1] < upper / 256:
            binding = bad.binding() if bad else "stability"
            return Search("unreachable", 0.0, 0.0, hi, n, f"{binding} binds: even {hi:.3g} req/s per replica misses "
                          f"the {attainment:.1%} attainment ({bad.slo_attainment:.1%} met)" if bad else
                          f"{binding} binds", None, bad)
        found = probes([ProbeTask(s, r, requests, None, window) for r in rates])
        n += len(rates)
        for r, p in zip(rates, found):
            if not p.feasible(attainment):
                hi, bad, hi_checked = r, p, True
                break
            lo, best = r, p
    if best is None:
        binding = bad.binding() if bad else "stability"
        return Search("unreachable", 0.0, 0.0, hi, n, f"{binding} binds: no feasible rate found in {n} runs", None, bad)
    return Search("ok", lo, lo, hi, n, "", best, bad)
