"""Pydantic models of the ``workload:`` section of a scenario.

Arrival processes are a discriminated union on ``process``, length distributions one on
``dist``. Times are in seconds, rates in requests per second, lengths in tokens.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from ..schema import StrictModel


class _Strict(StrictModel):
    """Unknown keys are errors; floats finite; no booleans for numbers."""


# ---------------------------------------------------------------- arrival rates


class RateSegment(_Strict):
    """A stretch of constant arrival rate."""

    duration_s: float = Field(gt=0, allow_inf_nan=False, description="length of the segment, seconds")
    rate: float = Field(ge=0, allow_inf_nan=False, description="requests per second (0 = idle)")


class Diurnal(_Strict):
    """A sinusoidal rate: ``mean_rate * (1 + amplitude * sin(2*pi*(t + phase_s) / period_s))``."""

    mean_rate: float = Field(gt=0, allow_inf_nan=False, description="requests per second")
    amplitude: float = Field(ge=0, le=1, allow_inf_nan=False, description="relative swing, 0..1")
    period_s: float = Field(default=86400.0, gt=0, allow_inf_nan=False)
    phase_s: float = Field(default=0.0, allow_inf_nan=False)


class _RateSpec(_Strict):
    """Exactly one of ``rate`` (constant), ``segments`` (piecewise constant) or ``diurnal``."""

    rate: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="requests per second")
    segments: list[RateSegment] | None = Field(default=None, min_length=1)
    after_segments: Literal["repeat", "hold"] = Field(
        default="repeat", description="past the last segment: start the list again, or keep the last rate"
    )
    diurnal: Diurnal | None = None

    @model_validator(mode="after")
    def _one_rate(self) -> _RateSpec:
        given = [k for k in ("rate", "segments", "diurnal") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of rate, segments, diurnal (got {', '.join(given) or 'none'})"
            )
        if self.segments is not None:
            if all(s.rate == 0 for s in self.segments):
                raise ValueError("segments: at least one segment needs rate > 0")
            if self.after_segments == "hold" and self.segments[-1].rate == 0:
                raise ValueError("segments: with after_segments: hold the last segment needs rate > 0")
        return self

    @property
    def mean_rate(self) -> float:
        """Long-run mean rate, requests per second (over one cycle for repeating segments)."""
        if self.rate is not None:
            return self.rate
        if self.diurnal is not None:
            return self.diurnal.mean_rate
        assert self.segments is not None
        if self.after_segments == "hold":
            return self.segments[-1].rate
        total = sum(s.duration_s for s in self.segments)
        return sum(s.rate * s.duration_s for s in self.segments) / total


class PoissonArrival(_RateSpec):
    """Poisson arrivals (exponential gaps), homogeneous or with a time-varying rate."""

    process: Literal["poisson"]


class GammaArrival(_RateSpec):
    """Gamma-renewal arrivals with coefficient of variation ``cv`` (1 = Poisson, > 1 = bursty)."""

    process: Literal["gamma"]
    cv: float = Field(gt=0, allow_inf_nan=False, description="std / mean of the gaps")


class ConstantArrival(_RateSpec):
    """Evenly spaced arrivals (1 / rate apart), the first at t = 0."""

    process: Literal["constant"]


class OfflineArrival(_Strict):
    """All requests present at t = 0 (batch inference)."""

    process: Literal["offline"]


class ClosedLoopArrival(_Strict):
    """``concurrency`` clients, each sending its next request after the previous one ends plus a think time."""

    process: Literal["closed_loop"]
    concurrency: int = Field(ge=1, description="number of clients")
    think_time_s: float = Field(default=0.0, ge=0, allow_inf_nan=False, description="seconds (mean if exponential)")
    think_time_dist: Literal["fixed", "exponential"] = "fixed"


class TraceArrival(_Strict):
    """Replay a recorded trace: Azure LLM inference CSV or Mooncake JSONL."""

    process: Literal["trace"]
    path: Path
    format: Literal["azure", "mooncake", "auto"] = "auto"
    speedup: float = Field(default=1.0, gt=0, allow_inf_nan=False, description="divides the trace's times")


ArrivalConfig = Annotated[
    Union[PoissonArrival, GammaArrival, ConstantArrival, OfflineArrival, ClosedLoopArrival, TraceArrival],
    Field(discriminator="process"),
]


# ---------------------------------------------------------------- lengths


class _Clip(_Strict):
    min: int | None = Field(default=None, ge=1, description="smallest length, tokens")
    max: int | None = Field(default=None, ge=1, description="largest length, tokens")

    @model_validator(mode="after")
    def _ordered(self) -> _Clip:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class FixedLength(_Clip):
    """Every request has ``value`` tokens."""

    dist: Literal["fixed"]
    value: int = Field(ge=1)


class UniformLength(_Clip):
    """Integers uniform on ``[low, high]``, both included."""

    dist: Literal["uniform"]
    low: int = Field(ge=1)
    high: int = Field(ge=1)

    @model_validator(mode="after")
    def _low_high(self) -> UniformLength:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
        return self


class NormalLength(_Clip):
    """Normal, rounded to integers and clipped to at least 1."""

    dist: Literal["normal"]
    mean: float = Field(gt=0, allow_inf_nan=False)
    std: float = Field(ge=0, allow_inf_nan=False)


class LognormalLength(_Clip):
    """Lognormal, rounded to integers. Give ``median`` (or ``p50``) and ``sigma``, or ``mean`` and ``p50``/``median``."""

    dist: Literal["lognormal"]
    median: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    p50: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    sigma: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="std of log(length)")
    mean: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _params(self) -> LognormalLength:
        if (self.median is None) == (self.p50 is None):
            raise ValueError("give exactly one of median, p50")
        if (self.sigma is None) == (self.mean is None):
            raise ValueError("give exactly one of sigma, mean")
        if self.mean is not None and self.mean < self.median_tokens:
            raise ValueError(f"mean ({self.mean}) must be >= the median ({self.median_tokens}) for a lognormal")
        return self

    @property
    def median_tokens(self) -> float:
        """Median length, tokens."""
        value = self.median if self.median is not None else self.p50
        assert value is not None
        return value

    @property
    def log_sigma(self) -> float:
        """Standard deviation of log(length); from ``mean = median * exp(sigma**2 / 2)`` when ``mean`` is given."""
        if self.sigma is not None:
            return self.sigma
        assert self.mean is not None
        return math.sqrt(2.0 * math.log(self.mean / self.median_tokens))


class EmpiricalLength(_Clip):
    """Resample (with replacement) the values of one column of a CSV, JSONL or Parquet file."""

    dist: Literal["empirical"]
    path: Path
    column: str = Field(min_length=1)


LengthConfig = Annotated[
    Union[FixedLength, UniformLength, NormalLength, LognormalLength, EmpiricalLength],
    Field(discriminator="dist"),
]


# ---------------------------------------------------------------- shared prefixes


class SharedPrefix(_Strict):
    """A system prompt of ``system_prompt_tokens`` tokens put before the prompts of a ``share`` of the
    requests; each such request uses one of ``prompts`` distinct system prompts, chosen uniformly."""

    system_prompt_tokens: int = Field(ge=1, description="tokens of each system prompt")
    share: float = Field(default=1.0, ge=0, le=1, allow_inf_nan=False, description="share of requests using one")
    prompts: int = Field(default=1, ge=1, description="distinct system prompts")


class Sessions(_Strict):
    """Multi-turn conversations. The arrival process starts sessions; turn t + 1 arrives ``think_time_s``
    after turn t ends, and its prompt is turn t's prompt + turn t's answer + new user tokens (drawn from
    ``prompt_tokens``). ``requests`` counts turns over all sessions."""

    turns: int = Field(ge=1, description="turns per session (mean when turns_dist is geometric)")
    turns_dist: Literal["fixed", "geometric"] = "fixed"
    think_time_s: float = Field(default=0.0, ge=0, allow_inf_nan=False, description="seconds (mean if exponential)")
    think_time_dist: Literal["fixed", "exponential"] = "fixed"


# ---------------------------------------------------------------- workload


class WorkloadConfig(_Strict):
    """What requests arrive, when, and how long they are.

    ``requests`` caps the number of requests; a trace replays all of its rows when it is absent.
    ``prompt_tokens``/``output_tokens`` are required except for a trace, whose own lengths are used
    unless these are given. ``prefix`` adds shared system prompts, ``sessions`` multi-turn chats.
    """

    arrival: ArrivalConfig
    requests: int | None = Field(default=None, ge=1, description="number of requests")
    warmup_requests: int | None = Field(
        default=None, ge=0, description="earliest-arriving requests left out of the metrics (default: the "
                                        "concurrency for a closed loop, capped at half the requests; else 0)")
    prompt_tokens: LengthConfig | None = None
    output_tokens: LengthConfig | None = None
    prefix: SharedPrefix | None = None
    sessions: Sessions | None = None

    @model_validator(mode="after")
    def _complete(self) -> WorkloadConfig:
        if self.sessions is not None and isinstance(self.arrival, (ClosedLoopArrival, TraceArrival)):
            raise ValueError(f"sessions cannot be combined with arrival.process {self.arrival.process}")
        if self.prefix is not None and isinstance(self.arrival, TraceArrival):
            raise ValueError("prefix cannot be combined with a trace (Mooncake traces carry their own hash_ids)")
        if self.warmup_requests and self.requests is not None and self.warmup_requests >= self.requests:
            raise ValueError(f"warmup_requests ({self.warmup_requests}) must be less than requests ({self.requests})")
        if isinstance(self.arrival, TraceArrival):
            return self
        missing = [k for k in ("requests", "prompt_tokens", "output_tokens") if getattr(self, k) is None]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} required when arrival.process is {self.arrival.process} (optional only for trace)"
            )
        return self

    def warmup(self, n: int) -> int:
        """Requests (of ``n``) that warm the system up and stay out of the metrics."""
        if self.warmup_requests is not None:
            return min(self.warmup_requests, max(n - 1, 0))
        if isinstance(self.arrival, ClosedLoopArrival):
            return min(self.arrival.concurrency, n // 2)
        return 0
