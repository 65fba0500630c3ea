"""Arrival times for open-loop processes (Poisson, gamma, constant) with constant or time-varying rates.

Time-varying rates use time rescaling: a unit-rate renewal process is drawn in "operational time"
``u`` and mapped back to wall time with the inverse of the cumulative rate
``Lambda(t) = integral_0^t rate(s) ds``. For Poisson this gives an exact non-homogeneous Poisson
process; for gamma and constant it keeps the gap shape relative to the local rate.
"""
from __future__ import annotations

import math

import numpy as np

from simulator.workload.config import ConstantArrival, Diurnal, GammaArrival, PoissonArrival, RateSegment

RateArrival = PoissonArrival | GammaArrival | ConstantArrival


class PiecewiseRate:
    """A piecewise-constant rate, repeated after the last segment or held at its last value."""

    def __init__(self, segments: list[RateSegment], after: str) -> None:
        self.durations = np.array([s.duration_s for s in segments], dtype=np.float64)
        self.rates = np.array([s.rate for s in segments], dtype=np.float64)
        self.repeat = after == "repeat"
        self.starts = np.concatenate([[0.0], np.cumsum(self.durations)[:-1]])
        mass = self.rates * self.durations
        self.mass_end = np.cumsum(mass)
        self.mass_start = self.mass_end - mass
        self.period = float(self.durations.sum())
        self.cycle_mass = float(self.mass_end[-1])

    def rate(self, t: np.ndarray) -> np.ndarray:
        """Rate at times ``t`` (seconds), requests per second."""
        t = np.asarray(t, dtype=np.float64)
        if self.repeat:
            t = np.mod(t, self.period)
        idx = np.clip(np.searchsorted(self.starts, t, side="right") - 1, 0, len(self.rates) - 1)
        return self.rates[idx]

    def cumulative(self, t: np.ndarray) -> np.ndarray:
        """Expected number of arrivals in ``[0, t]``."""
        t = np.asarray(t, dtype=np.float64)
        if self.repeat:
            cycles, t = np.divmod(t, self.period)
        else:
            cycles = np.zeros_like(t)
        idx = np.clip(np.searchsorted(self.starts, t, side="right") - 1, 0, len(self.rates) - 1)
        within = self.mass_start[idx] + self.rates[idx] * (t - self.starts[idx])
        return cycles * self.cycle_mass + within

    def inverse(self, u: np.ndarray) -> np.ndarray:
        """Times at which the cumulative rate reaches ``u`` (sorted in, sorted out)."""
        u = np.asarray(u, dtype=np.float64)
        if self.repeat:
            cycles, r = np.divmod(u, self.cycle_mass)
        else:
            cycles, r = np.zeros_like(u), np.minimum(u, self.cycle_mass)
        # The segment whose mass interval [start, end) holds r; idle segments are never chosen.
        idx = np.minimum(np.searchsorted(self.mass_end, r, side="right"), len(self.rates) - 1)
        rate = self.rates[idx]
        safe = np.where(rate > 0, rate, 1.0)
        t = cycles * self.period + self.starts[idx] + np.where(rate > 0, (r - self.mass_start[idx]) / safe, 0.0)
        if not self.repeat:
            beyond = u > self.cycle_mass
            t = np.where(beyond, self.period + (u - self.cycle_mass) / self.rates[-1], t)
        return t


class SinusoidRate:
    """``mean_rate * (1 + amplitude * sin(2*pi*(t + phase_s) / period_s))``."""

    def __init__(self, d: Diurnal) -> None:
        self.m, self.a, self.p, self.phase = d.mean_rate, d.amplitude, d.period_s, d.phase_s
        self.w = 2.0 * math.pi / self.p

    def rate(self, t: np.ndarray) -> np.ndarray:
        """Rate at times ``t`` (seconds), requests per second."""
        return self.m * (1.0 + self.a * np.sin(self.w * (np.asarray(t, dtype=np.float64) + self.phase)))

    def cumulative(self, t: np.ndarray) -> np.ndarray:
        """Expected number of arrivals in ``[0, t]``."""
        t = np.asarray(t, dtype=np.float64)
        swing = self.m * self.a / self.w
        return self.m * t + swing * (math.cos(self.w * self.phase) - np.cos(self.w * (t + self.phase)))

    def inverse(self, u: np.ndarray) -> np.ndarray:
        """Times at which the cumulative rate reaches ``u``; bisection within one period."""
        u = np.asarray(u, dtype=np.float64)
        cycles, r = np.divmod(u, self.m * self.p)
        lo = np.zeros_like(r)
        hi = np.full_like(r, self.p)
        for _ in range(64):  # halves [0, period] down to float64 resolution
            mid = 0.5 * (lo + hi)
            below = self.cumulative(mid) < r
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return cycles * self.p + 0.5 * (lo + hi)


class ConstantRate:
    """A constant rate."""

    def __init__(self, rate: float) -> None:
        self.r = rate

    def rate(self, t: np.ndarray) -> np.ndarray:
        """Rate at times ``t`` (seconds), requests per second."""
        return np.full_like(np.asarray(t, dtype=np.float64), self.r)

    def cumulative(self, t: np.ndarray) -> np.ndarray:
        """Expected number of arrivals in ``[0, t]``."""
        return self.r * np.asarray(t, dtype=np.float64)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        """Times at which the cumulative rate reaches ``u``."""
        return np.asarray(u, dtype=np.float64) / self.r


RateFunction = PiecewiseRate | SinusoidRate | ConstantRate


def rate_function(cfg: RateArrival) -> RateFunction:
    """The rate over time described by an arrival config."""
    if cfg.segments is not None:
        return PiecewiseRate(cfg.segments, cfg.after_segments)
    if cfg.diurnal is not None:
        return SinusoidRate(cfg.diurnal)
    assert cfg.rate is not None
    return ConstantRate(cfg.rate)


def operational_times(cfg: RateArrival, n: int, rng: np.random.Generator) -> np.ndarray:
    """Arrival times of ``n`` requests of a unit-rate process (mean gap 1), before rescaling."""
    if isinstance(cfg, ConstantArrival):
        return np.arange(n, dtype=np.float64)
    if isinstance(cfg, PoissonArrival):
        gaps = rng.standard_exponential(n)
    else:
        shape = 1.0 / (cfg.cv * cfg.cv)
        gaps = rng.standard_gamma(shape, n) / shape  # mean 1, std cv
    return np.cumsum(gaps)


def sample_arrivals(cfg: RateArrival, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times (seconds from 0) of ``n`` requests."""
    u = operational_times(cfg, n, rng)
    t = rate_function(cfg).inverse(u)
    return np.maximum.accumulate(t) if n else t  # guard against last-ulp reversals of the inversion
