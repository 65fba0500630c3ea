"""Summary metrics of a run: latency percentiles, throughput, goodput, utilisation, stability."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..engine.speculative import expected_tokens_per_step
from ..perf.ops import COMPUTE_DTYPE
from .columns import Columns, KeptColumns, RunColumns, TableColumns, table
from .itl_stats import itl_samples, itl_stats

if TYPE_CHECKING:
    from ..engine.simulate import SimulationResult

#: Percentiles every latency block reports by default (``servesim run --percentiles`` changes them).
PCTS: tuple[float, ...] = (50, 90, 95, 99, 99.9)
#: Fewest arrivals in the second half of the arrival span that the overload tests judge.
MIN_LATE_ARRIVALS = 10


def pct_key(p: float) -> str:
    """The key of percentile ``p``: ``p50``, ``p99.9`` (vLLM's ``p_word`` rule: integers lose the ``.0``)."""
    return f"p{int(p)}" if float(p).is_integer() else f"p{p}"


def stats(x: np.ndarray, w: np.ndarray | None = None,
          pcts: tuple[float, ...] = PCTS) -> dict[str, float | None]:
    """mean, median, std, min, max and the ``pcts`` percentiles (weighted if ``w``); None when empty.

    ``std`` is the population standard deviation (numpy's default, as ``vllm bench serve`` reports);
    unweighted percentiles interpolate linearly (``np.percentile``), weighted ones take the first
    sample whose cumulative weight reaches the percentile."""
    x = np.asarray(x, dtype=float)
    ok = ~np.isnan(x)
    if w is not None:
        w = np.asarray(w, dtype=float)[ok]
    x = x[ok]
    keys = ("mean", "median", "std", "min", "max", *(pct_key(p) for p in pcts))
    if not len(x) or (w is not None and w.sum() <= 0):
        return dict.fromkeys(keys)
    if w is None:
        mean, ps = float(x.mean()), np.percentile(x, (50, *pcts))
        std = float(x.std())
    else:
        order = np.argsort(x)
        xs, cw = x[order], np.cumsum(w[order])
        cw /= cw[-1]
        ps = [xs[min(len(xs) - 1, int(np.searchsorted(cw, p / 100.0)))] for p in (50, *pcts)]
        mean = float(np.average(x, weights=w))
        std = float(np.sqrt(np.average((x - mean) ** 2, weights=w)))
        x = x[w > 0]
    vals = (mean, float(ps[0]), std, float(x.min()), float(x.max()), *(float(v) for v in ps[1:]))
    return dict(zip(keys, vals))


def per_request(res: "SimulationResult") -> pd.DataFrame:
    """One row per request: times (seconds), lengths (tokens), replica and outcome.

    ``itl_p50_s``/``itl_p99_s``: percentiles of the request's own inter-token gaps (exact; NaN with
    fewer than two token deliveries; at any request count). ``cached_prompt_tokens``: prompt
    tokens its first admission took from the prefix cache. ``served_by``: gpu, exact_cache,
    semantic_cache, small_model or small_then_large. The columns are :data:`.columns.COLUMNS`."""
    return table(res)


def time_series(res: "SimulationResult") -> pd.DataFrame:
    """Per replica over time: running batch, queue length, KV blocks in use, step durations."""
    s = res.steps
    return pd.DataFrame({"t_start_s": s["t_start"], "t_s": s["t_end"], "replica": s["replica"],
                         "steps": s["steps"], "running": s["running"], "waiting": s["waiting"],
                         "kv_blocks_used": s["kv_blocks"], "kv_used_fraction": s["kv_blocks"] / _capacity(res),
                         "decode_seqs": s["decode_seqs"], "prefill_tokens": s["prefill_tokens"],
                         "step_s": s["dt_first"]})


def _capacity(res: "SimulationResult", steps: dict[str, np.ndarray] | None = None) -> np.ndarray | int:
    """KV blocks of the replica of each step-log row (of ``steps``, default the whole log)."""
    caps = res.kv_blocks_by_replica
    return caps[(res.steps if steps is None else steps)["replica"]] if len(caps) else res.kv_blocks


def features(res: "SimulationResult", cols: Columns, done: np.ndarray) -> dict[str, Any]:
    """Summaries of the serving optimisations the scenario turned on (empty when none)."""
    f = res.features
    d = res.scenario.deployment
    out: dict[str, Any] = {}
    pc = f.get("prefix_cache")
    if pc is not None:
        prompt = float(cols["prompt_tokens"].sum())
        cached = cols["cached_prompt_tokens"]
        hit, miss = done & (cached > 0), done & (cached == 0)
        ttft = cols["ttft_s"]
        out["prefix_cache"] = {
            "hit_rate": float(cached.sum()) / prompt if prompt else 0.0,
            "block_hit_rate": pc["hit_blocks"] / pc["lookup_blocks"] if pc["lookup_blocks"] else 0.0,
            "prefill_tokens_saved": int(res.requests.cached.sum()),
            "requests_with_hits": int((cached > 0).sum()),
            "ttft_hit_mean_s": float(ttft[hit].mean()) if hit.any() else None,
            "ttft_miss_mean_s": float(ttft[miss].mean()) if miss.any() else None,
            "evicted_blocks": pc["evicted_blocks"], "cached_blocks_at_end": pc["cached_blocks_at_end"],
            "references_at_end": pc["references_at_end"], "peak_resident_fraction": pc["peak_resident_fraction"]}
    sp = f.get("speculative")
    if sp is not None and d.speculative is not None:
        c = d.speculative
        per = sp["tokens"] / sp["verify_seq_steps"] if sp["verify_seq_steps"] else None
        out["speculative"] = {"method": c.method, "k": c.k, "acceptance": c.acceptance,
                              "tokens_per_step": per, "expected_tokens_per_step": expected_tokens_per_step(c.k, c.acceptance),
                              "draft_tokens_accepted_share": (per - 1) / c.k if per is not None else None}
    dg = f.get("disaggregation")
    if dg is not None:
        out["disaggregation"] = {**dg, "kv_transfer_s": stats(cols["kv_transfer_s"][done])}
    for key in ("service_cache", "cascade"):
        if key in f:
            out[key] = f[key]
    return out


def stability(res: "SimulationResult", cols: Columns, done: np.ndarray) -> dict[str, Any]:
    """Whether the waiting queue stayed bounded while requests arrived (open-loop arrivals).

    Overload shows as a queueing delay that grows with arrival time: the least-squares slope of
    queueing delay against arrival time over the second half of the arrival window (seconds of
    delay per second) above 5%, with delays over a second by the end, marks the run unstable.
    """
    arr, q = cols["arrival_s"], cols["queue_s"]
    t_end = res.arrival_end_s
    if cols.n and not done.any():
        return {"stable": False, "queue_growth_per_s": 0.0, "reason": "no request completed"}
    if t_end <= 0:
        return {"stable": True, "queue_growth_per_s": 0.0, "reason": "no arrival window (offline or closed loop)"}
    late = (arr >= t_end / 2) & ~np.isnan(q)
    never = int(((arr >= t_end / 2) & np.isnan(q) & ~cols["rejected"]).sum())
    slope: float | None = 0.0
    q_end = 0.0
    if late.sum() >= MIN_LATE_ARRIVALS:
        x, y = arr[late], q[late]
        slope = growth_slope(x, y)
        q_end = float(np.mean(y[x >= np.quantile(x, 0.9)]))
    # no slope: the late arrivals span no time that floats resolve, so the backlog grew at once
    unstable = bool(((slope is None or slope > 0.05) and q_end > 1.0) or never > 0)
    out: dict[str, Any] = {"stable": not unstable, "queue_growth_per_s": slope, "queue_s_at_end_of_arrivals": q_end}
    if slope is None:
        out["reason"] = f"arrivals {float(np.ptp(x)):.3g} s apart: too close to fit a growth rate"
    return out


def keeping_up(cols: Columns) -> dict[str, Any]:
    """Offered against achieved rate over the second half of the arrival span (requests per second).

    Once warm, a system that keeps up completes requests as fast as they arrive, whatever its
    latency; one that is overloaded completes at its capacity and the gap is the backlog's growth.
    ``kept_up`` is False when completions in that half fall short of arrivals by more than 10% and
    by more than three standard deviations of a Poisson count (3 sqrt(arrivals)), so that a short
    run's noise does not read as overload."""
    arr = cols["arrival_s"]
    fin = arr + cols["e2e_s"]
    if len(arr) < 4 or not np.ptp(arr) > 0:
        return {"offered_rate": None, "achieved_rate": None, "kept_up": None}
    t0, t1 = float(arr.min() + np.ptp(arr) / 2), float(arr.max())
    n_in = float(((arr >= t0) & (arr <= t1)).sum())
    n_out = float(((fin >= t0) & (fin <= t1)).sum())
    short = n_in - n_out
    kept = None if n_in < MIN_LATE_ARRIVALS else not (short > 0.1 * n_in and short > 3.0 * np.sqrt(n_in))
    return {"offered_rate": n_in / (t1 - t0), "achieved_rate": n_out / (t1 - t0), "kept_up": kept}


def load_verdict(rate: dict[str, Any], st: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(rate, stability)`` made to agree, from one rule: a run is overloaded when no request
    completed, its queueing delay grew (:func:`stability`) or its completions fell short of its
    arrivals (:func:`keeping_up`); then ``kept_up`` and ``stable`` are both False. With fewer than
    :data:`MIN_LATE_ARRIVALS` arrivals in the second half neither test can tell: ``kept_up`` is None
    and ``stability.judged`` False (``stable`` stays True there, as for closed loops)."""
    rate, st = dict(rate), dict(st)
    if not st["stable"]:
        rate["kept_up"] = False if rate.get("offered_rate") is not None or st.get("reason") else rate["kept_up"]
        return rate, st
    if rate["kept_up"] is False:
        st.update(stable=False, reason=f"completions fell behind arrivals: {rate['achieved_rate']:.3g} of "
                                       f"{rate['offered_rate']:.3g} req/s in the second half of arrivals (overload)")
    elif rate["kept_up"] is None and rate.get("offered_rate") is not None:
        st.update(judged=False, reason=f"fewer than {MIN_LATE_ARRIVALS} arrivals in the second half of the "
                                       "arrival span: too few to tell (give more requests)")
    return rate, st


def setup(res: "SimulationResult") -> dict[str, Any]:
    """What was simulated, for the run header: model, GPUs, engine, parallelism, precision, arrivals."""
    sc = res.scenario
    d, arr = sc.deployment, sc.workload.arrival
    rate = getattr(arr, "mean_rate", None) if hasattr(arr, "rate") else None
    return {"model": sc.model, "gpu": d.gpu, "gpus": int(res.total_gpus or d.replicas * res.gpus_per_replica),
            "engine": d.engine, "tp": d.tp, "pp": d.pp, "replicas": d.replicas,
            "weight_dtype": d.weight_dtype, "kv_dtype": d.kv_dtype, "arrival": arr.process,
            "offered_rate": rate, "concurrency": getattr(arr, "concurrency", None)}


def peaks(res: "SimulationResult") -> dict[str, Any]:
    """What MFU and MBU are fractions of: the dense peak of the compute dtype (the one the weights'
    precision runs in, :data:`..perf.ops.COMPUTE_DTYPE`) and the HBM bandwidth, per GPU of the first
    pool; ``mixed`` when other pools' GPUs differ (the fractions then use every GPU's own peak)."""
    d = res.scenario.deployment
    gpus = res.total_gpus or d.replicas * res.gpus_per_replica
    mixed = bool((res.peak_flops_total and abs(res.peak_flops_total - res.peak_flops * gpus) > 1e-6 * res.peak_flops_total)
                 or (res.bandwidth_total and abs(res.bandwidth_total - res.memory_bandwidth * gpus)
                     > 1e-6 * res.bandwidth_total))
    return {"compute_dtype": COMPUTE_DTYPE.get(d.weight_dtype, d.weight_dtype),
            "peak_tflops_per_gpu": res.peak_flops / 1e12, "hbm_tbps_per_gpu": res.memory_bandwidth / 1e12,
            "mixed": mixed}


def growth_slope(x: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope of ``y`` against ``x``, on ``x`` centred and scaled to [-1, 1] (so arrival
    times near the smallest floats, e.g. ``arrival.rate: 1e300``, cannot underflow the fit); None
    when the ``x`` span no time or the slope is not a finite float."""
    dx = x - x.mean()
    span = float(dx.max() - dx.min())
    if not span > 0:
        return None
    u = dx / span
    slope = float(u @ (y - y.mean()) / (u @ u) / span)
    return slope if np.isfinite(slope) else None


def window_steps(steps: dict[str, np.ndarray], start: float, end: float) -> dict[str, np.ndarray]:
    """The step log cut to the window [start, end]: rows outside dropped, a row (a decode run) that
    straddles an edge keeps its overlapping share of time, FLOPs, bytes and decode steps."""
    t0, t1 = steps["t_start"], steps["t_end"]
    span = t1 - t0
    lo, hi = np.maximum(t0, start), np.minimum(t1, end)
    frac = np.where(span > 0, np.clip(hi - lo, 0.0, None) / np.where(span > 0, span, 1.0),
                    ((t0 >= start) & (t0 <= end)).astype(float))
    keep = frac > 0
    out = {k: v[keep] for k, v in steps.items()}
    f = frac[keep]
    out["t_start"], out["t_end"] = lo[keep], np.maximum(hi[keep], lo[keep])
    for k in ("flops", "bytes"):
        out[k] = steps[k][keep] * f
    out["steps"] = np.maximum(np.round(steps["steps"][keep] * f), 1).astype(steps["steps"].dtype)
    return out


def rejected_by_reason(cols: Columns) -> dict[str, int]:
    """Rejected requests counted per reason (only reasons that occurred, most frequent first)."""
    reasons = pd.Series(cols["reject_reason"][cols["rejected"]])
    return {str(k): int(v) for k, v in reasons.value_counts().items()}


def summarize(res: "SimulationResult", df: pd.DataFrame | None = None,
              percentiles: tuple[float, ...] = ()) -> dict[str, Any]:
    """The summary object printed by ``servesim run --json``; latency blocks carry the default
    percentiles and ``percentiles`` (e.g. ``(99.9,)``) besides.

    Reads the columns of ``df`` (a :func:`per_request` table) if given, else makes the few it needs
    from the run one at a time, without the table."""
    cols: Columns = RunColumns(res) if df is None else TableColumns(df)
    pcts = tuple(sorted(set(PCTS) | {float(p) for p in percentiles}))
    warm = cols["warmup"]
    n_warm = int(warm.sum())
    if n_warm:
        cols = KeptColumns(cols, ~warm)
    del warm
    done = cols["finished"]
    arr = cols["arrival_s"]
    start = float(np.nanmin(arr)) if cols.n else 0.0
    end = float(np.nanmax(arr + cols["e2e_s"])) if done.any() else start
    del arr
    dur = max(end - start, 1e-12)
    s = window_steps(res.steps, start, end) if n_warm else res.steps
    out_tok = float(cols["output_tokens"][done].sum())
    in_tok = float(cols["prompt_tokens"][done].sum())
    n_ok = int(cols["meets_slo"].sum())
    verdict = load_verdict(keeping_up(cols), stability(res, cols, done))
    return {
        "scenario": res.scenario.name or None,
        "requests": int(cols.n), "completed": int(done.sum()), "rejected": int(cols["rejected"].sum()),
        "rejected_by_reason": rejected_by_reason(cols),
        "duration_s": dur,
        "setup": setup(res),
        "rate": verdict[0],
        "window": {"start_s": start, "end_s": end, "warmup_requests": n_warm},
        "throughput_requests_per_s": float(done.sum()) / dur,
        "throughput_output_tokens_per_s": out_tok / dur,
        "throughput_input_tokens_per_s": in_tok / dur,
        "throughput_total_tokens_per_s": (in_tok + out_tok) / dur,
        **_latencies(cols, done, s, pcts),
        "percentiles": list(pcts),
        "slos": {k: v for k, v in res.scenario.slo.model_dump().items() if v is not None},
        "goodput_requests_per_s": n_ok / dur,
        "slo_attainment": n_ok / max(cols.n, 1),
        "preemptions": int(cols["preemptions"].sum()),
        "itl_request_p50_s": stats(cols["itl_p50_s"][done], None, pcts),
        "itl_request_p99_s": stats(cols["itl_p99_s"][done], None, pcts),
        **_utilisation(res, s, dur),
        "prefill_tokens_computed": int(cols["prefill_tokens_computed"].sum()),
        "stability": verdict[1],
        "steps": int(s["steps"].sum()),
        "simulation_wall_s": res.wall_time_s,
        **features(res, cols, done),
        "notes": res.notes,
    }


def _latencies(cols: Columns, done: np.ndarray, s: dict[str, np.ndarray],
               pcts: tuple[float, ...]) -> dict[str, Any]:
    """Latency blocks of the answered requests (ITL over every token gap of the steps ``s``)."""
    tpot = cols["tpot_s"][done]
    return {
        "ttft_s": stats(cols["ttft_s"][done], None, pcts),
        "tpot_s": stats(tpot, None, pcts),
        "itl_s": itl_block(s, pcts),
        "e2e_s": stats(cols["e2e_s"][done], None, pcts),
        "queue_s": stats(cols["queue_s"][done], None, pcts),
        "output_tokens_per_s_per_user": stats(1.0 / tpot[tpot > 0], None, pcts),
    }


def itl_block(s: dict[str, np.ndarray], pcts: tuple[float, ...]) -> dict[str, float | None]:
    """:func:`stats` of the weighted ITL samples of the steps ``s``: a block of rows at a time where
    :func:`.itl_stats.itl_stats` applies (the same numbers), else from the flat samples."""
    vals = itl_stats(s, pcts)
    if vals is None:
        return stats(*itl_samples(s), pcts)
    return dict(zip(("mean", "median", "std", "min", "max", *(pct_key(p) for p in pcts)), vals))


def _utilisation(res: "SimulationResult", s: dict[str, np.ndarray], dur: float) -> dict[str, Any]:
    """GPUs, MFU, MBU, busy fraction and KV use over the window ``dur`` of the steps ``s``."""
    d = res.scenario.deployment
    gpus = res.total_gpus or d.replicas * res.gpus_per_replica
    peak = res.peak_flops_total or res.peak_flops * gpus
    bw = res.bandwidth_total or res.memory_bandwidth * gpus
    n_rep = max(d.replicas, len(res.kv_blocks_by_replica))
    # a step's time covers all pipeline stages in turn, so each stage's GPUs are busy 1/pp of it
    busy = np.bincount(s["replica"], weights=s["t_end"] - s["t_start"], minlength=n_rep) / dur / max(d.pp, 1)
    kv_frac = s["kv_blocks"] / _capacity(res, s)
    return {
        "gpus": int(gpus),
        "mfu": float(s["flops"].sum()) / (dur * peak),
        "mbu": float(s["bytes"].sum()) / (dur * bw),
        "busy_fraction": float(busy.mean()),
        "utilisation_peaks": peaks(res),
        "kv_cache": {"blocks_per_replica": res.kv_blocks, "block_size": d.kv_cache.block_size,
                     "peak_used_fraction": float(kv_frac.max()) if len(s["kv_blocks"]) else 0.0,
                     "mean_used_fraction": float(kv_frac.mean()) if len(s["kv_blocks"]) else 0.0},
    }
