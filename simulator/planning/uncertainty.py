"""Error bars from independent replications.

A run's summary statistics (mean TTFT, p99 TPOT, throughput, ...) are random: they depend on
the seed that drew arrivals and lengths. :func:`replicate` runs ``k`` replications with seeds
``seed, seed+1, ..., seed+k-1`` (independent random streams) and :func:`confidence_intervals`
gives, per metric, the mean over replications and a Student-t interval
``mean ± t(1-α/2, k-1) · s / sqrt(k)``, which covers the expectation of that per-run
statistic (for this run length) with probability ``1-α`` when the per-run values are roughly
normal (they are averages or quantiles over many requests). Yes/no metrics (``stability.stable``)
get the fraction of replications with a Wilson score interval instead.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from ..config.scenario import Scenario

#: Summary keys that describe the run rather than measure it.
_SKIP = {"scenario", "notes", "simulation_wall_s"}


def _z(confidence: float) -> float:
    from scipy.stats import norm
    return float(norm.ppf(0.5 + confidence / 2))


def t_interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, float | int | None]:
    """Mean, sample standard deviation and the two-sided Student-t interval of ``values``.

    With fewer than two values the interval is undefined (``half_width`` None).
    """
    if not 0 < confidence < 1:
        raise InputError("confidence", confidence, "must be between 0 and 1 (e.g. 0.95)")
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "half_width": None, "low": None, "high": None}
    mean = float(x.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "std": None, "half_width": None, "low": None, "high": None}
    from scipy.stats import t
    std = float(x.std(ddof=1))
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "half_width": half, "low": mean - half, "high": mean + half}


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``successes / n``: (low, high)."""
    if n <= 0:
        raise InputError("replications", n, "need at least one trial for a proportion")
    if not 0 <= successes <= n:
        raise InputError("successes", successes, f"must be between 0 and {n}")
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _leaves(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not prefix and k in _SKIP:
                continue
            out.update(_leaves(v, f"{prefix}{k}."))
    elif isinstance(obj, (bool, np.bool_)) or isinstance(obj, (int, float, np.integer, np.floating)) or obj is None:
        out[prefix[:-1]] = obj
    return out


def confidence_intervals(summaries: Sequence[dict[str, Any]], confidence: float = 0.95) -> dict[str, dict[str, Any]]:
    """Per metric (dotted summary key, e.g. ``ttft_s.p99``): the mean over the summaries with a
    t-interval, or for yes/no metrics the fraction true with a Wilson interval."""
    if not summaries:
        raise InputError("replications", 0, "need at least one summary")
    flat = [_leaves(s) for s in summaries]
    keys: list[str] = []
    for f in flat:
        keys += [k for k in f if k not in keys]
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        vals = [f.get(key) for f in flat]
        present = [v for v in vals if v is not None]
        if present and all(isinstance(v, (bool, np.bool_)) for v in present):
            hits = sum(bool(v) for v in present)
            lo, hi = wilson_interval(hits, len(present), confidence)
            out[key] = {"n": len(present), "fraction": hits / len(present), "low": lo, "high": hi,
                        "method": "wilson"}
        else:
            out[key] = {**t_interval([float(v) for v in present], confidence), "method": "t"}
    return out


def _run_one(scenario: "Scenario") -> dict[str, Any]:
    from ..engine.simulate import simulate
    from ..metrics.summary import summarize
    return summarize(simulate(scenario))


def replicate(scenario: "Scenario", k: int, workers: int = 1, confidence: float = 0.95) -> dict[str, Any]:
    """Run ``k`` replications (seeds ``scenario.seed .. scenario.seed + k - 1``) and summarise them.

    Returns ``{"replications", "seeds", "confidence", "metrics", "summaries"}`` where ``metrics``
    is :func:`confidence_intervals` of the ``k`` summaries. ``workers > 1`` runs them in processes.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError("replications", k, "must be an integer >= 1")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError("workers", workers, "must be an integer >= 1")
    seeds = [scenario.seed + i for i in range(k)]
    runs = [scenario.model_copy(update={"seed": s}) for s in seeds]
    if workers > 1 and k > 1:
        with ProcessPoolExecutor(max_workers=min(workers, k)) as pool:
            summaries = list(pool.map(_run_one, runs))
    else:
        summaries = [_run_one(r) for r in runs]
    return {"replications": k, "seeds": seeds, "confidence": confidence,
            "metrics": confidence_intervals(summaries, confidence), "summaries": summaries}
