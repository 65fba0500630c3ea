"""Arrival processes against their defining statistics (bounds at about 4 standard errors)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from simulator.workload import ConstantArrival, GammaArrival, PoissonArrival
from simulator.workload.arrivals import PiecewiseRate, SinusoidRate, rate_function, sample_arrivals
from simulator.workload.config import Diurnal, RateSegment

N = 20_000


def _rng(seed: int = 7) -> np.random.Generator:
    return np.random.default_rng(seed)


def _gaps(t: np.ndarray) -> np.ndarray:
    return np.diff(np.concatenate([[0.0], t]))


def test_poisson_gap_mean_cv_and_shape() -> None:
    rate = 10.0
    t = sample_arrivals(PoissonArrival(process="poisson", rate=rate), N, _rng())
    g = _gaps(t)
    assert np.all(np.diff(t) >= 0) and t[0] > 0
    # Mean gap 1/rate; standard error (1/rate)/sqrt(n).
    assert abs(g.mean() - 1 / rate) < 4 * (1 / rate) / math.sqrt(N)
    # Sample CV of exponential gaps: delta method gives sd(log CV) = 1/sqrt(n).
    cv = g.std(ddof=1) / g.mean()
    assert abs(math.log(cv)) < 4 / math.sqrt(N)
    assert stats.kstest(g, "expon", args=(0, 1 / rate)).pvalue > 1e-3


@pytest.mark.parametrize("cv", [0.5, 1.0, 2.0, 4.0])
def test_gamma_gap_cv_matches(cv: float) -> None:
    rate = 3.0
    t = sample_arrivals(GammaArrival(process="gamma", rate=rate, cv=cv), N, _rng(11))
    g = _gaps(t)
    assert abs(g.mean() - 1 / rate) < 4 * cv * (1 / rate) / math.sqrt(N)
    # Delta method for gamma gaps: Var(log CV) = (1 + cv^2) / (2n).
    sample_cv = g.std(ddof=1) / g.mean()
    assert abs(math.log(sample_cv / cv)) < 4 * math.sqrt((1 + cv * cv) / (2 * N))
    if cv <= 2:
        # For cv = 4 (shape 1/16) many gaps are below the float64 resolution of absolute times
        # (about 1e-12 s at t = 1 h) and come back as ties, so the shape test would fail on rounding.
        shape = 1 / cv**2
        assert stats.kstest(g, "gamma", args=(shape, 0, 1 / (rate * shape))).pvalue > 1e-3


def test_constant_is_exact() -> None:
    t = sample_arrivals(ConstantArrival(process="constant", rate=4.0), 1000, _rng())
    assert t[0] == 0.0
    np.testing.assert_allclose(np.diff(t), 0.25, rtol=1e-12)
    np.testing.assert_allclose(t, np.arange(1000) * 0.25, rtol=0, atol=1e-12)


def test_segments_repeat_counts() -> None:
    segments = [{"duration_s": 60, "rate": 5}, {"duration_s": 60, "rate": 20}]
    cfg = PoissonArrival(process="poisson", segments=segments)
    t = sample_arrivals(cfg, N, _rng(3))
    cycles = int(t[-1] // 120)  # whole cycles observed
    assert cycles >= 10
    t = t[t < cycles * 120]
    phase = np.mod(t, 120)
    for lo, hi, rate in ((0, 60, 5), (60, 120, 20)):
        expected = rate * 60 * cycles
        got = np.count_nonzero((phase >= lo) & (phase < hi))
        assert abs(got - expected) < 4 * math.sqrt(expected), (lo, got, expected)


def test_segments_hold_last_rate_and_idle_segment() -> None:
    segments = [{"duration_s": 100, "rate": 5}, {"duration_s": 50, "rate": 0}, {"duration_s": 100, "rate": 20}]
    cfg = PoissonArrival(process="poisson", segments=segments, after_segments="hold")
    t = sample_arrivals(cfg, N, _rng(5))
    assert np.count_nonzero((t >= 100) & (t < 150)) == 0  # the idle stretch
    first = np.count_nonzero(t < 100)
    assert abs(first - 500) < 4 * math.sqrt(500)
    end = t[-1]
    assert end > 1000  # well past the listed segments
    tail_expected = 20 * (end - 150)
    tail = np.count_nonzero(t >= 150)
    assert abs(tail - tail_expected) < 4 * math.sqrt(tail_expected)


def test_gamma_with_segments_keeps_segment_counts() -> None:
    segments = [{"duration_s": 50, "rate": 2}, {"duration_s": 50, "rate": 30}]
    cfg = GammaArrival(process="gamma", cv=0.5, segments=segments)
    t = sample_arrivals(cfg, N, _rng(9))
    cycles = int(t[-1] // 100)
    t = t[t < cycles * 100]
    slow = np.count_nonzero(np.mod(t, 100) < 50)
    # Regular (cv < 1) gaps make the count less variable than Poisson: a Poisson bound holds.
    assert abs(slow - 100 * cycles) < 4 * math.sqrt(100 * cycles)


def test_diurnal_mean_rate_and_shape() -> None:
    d = {"mean_rate": 10.0, "amplitude": 0.5, "period_s": 100.0, "phase_s": 0.0}
    t = sample_arrivals(PoissonArrival(process="poisson", diurnal=d), N, _rng(13))
    periods = int(t[-1] // 100)
    t = t[t < periods * 100]
    expected_total = 10.0 * 100 * periods
    assert abs(len(t) - expected_total) < 4 * math.sqrt(expected_total)
    # High half (sin > 0): integral of 10 (1 + 0.5 sin) over [0, 50] = 10 (50 + 0.5 * 100 / pi).
    high = np.count_nonzero(np.mod(t, 100) < 50)
    high_expected = periods * 10 * (50 + 50 / math.pi)
    assert abs(high - high_expected) < 4 * math.sqrt(high_expected)


def test_diurnal_phase_shifts_the_peak() -> None:
    d = Diurnal(mean_rate=10, amplitude=1.0, period_s=100, phase_s=50)
    f = SinusoidRate(d)
    # With phase 50 s the peak (sin = 1) sits at t = 75 s and the trough (rate 0) at t = 25 s.
    assert float(f.rate(np.array([75.0]))[0]) == pytest.approx(20.0)
    assert float(f.rate(np.array([25.0]))[0]) == pytest.approx(0.0, abs=1e-9)
    t = sample_arrivals(PoissonArrival(process="poisson", diurnal=d), 5000, _rng(2))
    phase = np.mod(t, 100)
    near_trough = np.count_nonzero(np.abs(phase - 25) < 5)
    near_peak = np.count_nonzero(np.abs(phase - 75) < 5)
    assert near_peak > 10 * max(near_trough, 1)


@settings(max_examples=60, deadline=None)
@given(
    rates=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=6),
    durations=st.lists(st.floats(0.1, 100.0), min_size=6, max_size=6),
    after=st.sampled_from(["repeat", "hold"]),
    u=st.lists(st.floats(0.0, 1e4), min_size=1, max_size=50),
)
def test_piecewise_inverse_is_exact(rates: list[float], durations: list[float], after: str, u: list[float]) -> None:
    rates = rates[:]
    rates[-1] = max(rates[-1], 0.5)  # hold needs a positive last rate
    f = PiecewiseRate([RateSegment(duration_s=d, rate=r) for r, d in zip(rates, durations)], after)
    uu = np.sort(np.asarray(u))
    t = f.inverse(uu)
    assert np.all(np.diff(t) >= -1e-9 * (1 + t[1:]))
    np.testing.assert_allclose(f.cumulative(t), uu, rtol=1e-9, atol=1e-7)
    # Arrivals never land inside an idle stretch (a segment boundary, up to rounding, is fine).
    eps = 1e-9 * (1 + t)
    assert np.all((f.rate(t) > 0) | (f.rate(t - eps) > 0) | (f.rate(t + eps) > 0))


@settings(max_examples=60, deadline=None)
@given(
    mean=st.floats(0.01, 100.0),
    amp=st.floats(0.0, 1.0),
    period=st.floats(1.0, 1e5),
    phase=st.floats(-1e5, 1e5),
    u=st.lists(st.floats(0.0, 1e6), min_size=1, max_size=50),
)
def test_sinusoid_inverse_is_exact(mean: float, amp: float, period: float, phase: float, u: list[float]) -> None:
    f = SinusoidRate(Diurnal(mean_rate=mean, amplitude=amp, period_s=period, phase_s=phase))
    t = f.inverse(np.asarray(u))
    np.testing.assert_allclose(f.cumulative(t), u, rtol=1e-9, atol=1e-6)


def test_rate_function_kinds() -> None:
    assert float(rate_function(PoissonArrival(process="poisson", rate=3)).inverse(np.array([6.0]))[0]) == 2.0
    f = rate_function(PoissonArrival(process="poisson", segments=[{"duration_s": 10, "rate": 1}, {"duration_s": 10, "rate": 3}]))
    # 10 arrivals expected in the first 10 s, then 3/s: u = 16 is reached at t = 12 s; the cycle holds 40.
    np.testing.assert_allclose(f.inverse(np.array([5.0, 16.0, 45.0])), [5.0, 12.0, 25.0])
