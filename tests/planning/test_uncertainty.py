"""Error bars: t-intervals, Wilson intervals, their coverage, and replications of a scenario."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.config import scenario_from_dict
from simulator.errors import InputError
from simulator.planning.uncertainty import confidence_intervals, replicate, t_interval, wilson_interval

from .conftest import tiny


def test_t_interval_by_hand():
    ci = t_interval([1, 2, 3, 4, 5])
    # mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776445 (tables)
    assert ci["mean"] == 3 and ci["std"] == pytest.approx(math.sqrt(2.5))
    assert ci["half_width"] == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-5)
    assert ci["low"] == pytest.approx(3 - ci["half_width"]) and ci["n"] == 5
    one = t_interval([7.0])
    assert one["mean"] == 7.0 and one["half_width"] is None
    assert t_interval([])["mean"] is None
    with pytest.raises(InputError, match="confidence"):
        t_interval([1, 2], confidence=1.5)


def test_wilson_interval_by_hand():
    # 8 of 10 at 95%: centre (0.8 + z²/20)/(1 + z²/10), z = 1.959964
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson_interval(5, 5)
    assert hi == 1.0 and lo == pytest.approx(0.5655, abs=1e-4)
    with pytest.raises(InputError):
        wilson_interval(3, 0)


def test_t_interval_covers_the_true_mean_about_95_percent():
    rng = np.random.default_rng(12345)
    draws, n, mu = 4000, 6, 10.0
    hits = 0
    for _ in range(draws):
        ci = t_interval(rng.normal(mu, 3.0, n))
        hits += ci["low"] <= mu <= ci["high"]
    # binomial sd of the coverage at 4000 draws is 0.0034: 0.95 +- 5 sd
    assert 0.933 <= hits / draws <= 0.967


def test_wilson_interval_covers_the_true_proportion():
    rng = np.random.default_rng(7)
    p, n, draws = 0.9, 40, 3000
    cover = np.mean([wilson_interval(int(k), n)[0] <= p <= wilson_interval(int(k), n)[1]
                     for k in rng.binomial(n, p, draws)])
    assert 0.92 <= cover <= 0.98


def test_confidence_intervals_per_metric():
    sums = [{"ttft_s": {"p99": v}, "stability": {"stable": s}, "requests": 10, "notes": ["x"], "scenario": "n"}
            for v, s in ((1.0, True), (2.0, True), (3.0, False), (4.0, True))]
    ci = confidence_intervals(sums)
    assert ci["ttft_s.p99"]["mean"] == 2.5 and ci["ttft_s.p99"]["method"] == "t"
    assert ci["ttft_s.p99"]["half_width"] == pytest.approx(3.182446 * np.std([1, 2, 3, 4], ddof=1) / 2, rel=1e-5)
    assert ci["stability.stable"]["fraction"] == 0.75 and ci["stability.stable"]["method"] == "wilson"
    assert ci["requests"]["half_width"] == 0.0
    assert "notes" not in ci and "scenario" not in ci


def test_replicate_runs_consecutive_seeds():
    s = scenario_from_dict(tiny(), {"workload.requests": 120})
    out = replicate(s, 3)
    assert out["seeds"] == [1, 2, 3] and len(out["summaries"]) == 3
    vals = [x["ttft_s"]["mean"] for x in out["summaries"]]
    assert len(set(vals)) == 3  # independent draws differ
    m = out["metrics"]["ttft_s.mean"]
    assert m["mean"] == pytest.approx(np.mean(vals)) and m["n"] == 3 and m["low"] < m["mean"] < m["high"]
    with pytest.raises(InputError, match="replications"):
        replicate(s, 0)
