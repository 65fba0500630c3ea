"""Prompt and output length distributions: integer token counts >= 1."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from simulator.errors import InputError
from simulator.workload.config import (
    EmpiricalLength,
    FixedLength,
    LengthConfig,
    LognormalLength,
    NormalLength,
    UniformLength,
)
from simulator.workload.traces import read_length_column

MAX_LENGTH = 2**53
"""Largest length drawn without a ``max`` (the float64 integer range); far beyond any context window."""


def fit_lognormal(mean: float, median: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the lognormal with the given mean and median (tokens).

    ``median = exp(mu)`` and ``mean = median * exp(sigma**2 / 2)``, so
    ``sigma = sqrt(2 * ln(mean / median))``. Needs ``mean >= median > 0``.
    """
    if not (math.isfinite(median) and median > 0):
        raise InputError("median", median, "must be a finite number > 0")
    if not (math.isfinite(mean) and mean >= median):
        raise InputError("mean", mean, f"must be >= the median ({median}) for a lognormal")
    return math.log(median), math.sqrt(2.0 * math.log(mean / median))


def sample_lengths(
    cfg: LengthConfig, n: int, rng: np.random.Generator, *, field: str = "length", base_dir: Path | None = None
) -> np.ndarray:
    """``n`` integer lengths (int64, tokens, >= 1) drawn from ``cfg``, clipped to ``[min, max]``.

    ``field`` names the config entry in error messages; relative ``empirical`` paths are taken
    from ``base_dir`` (default: the working directory).
    """
    if isinstance(cfg, FixedLength):
        raw = np.full(n, cfg.value, dtype=np.float64)
    elif isinstance(cfg, UniformLength):
        raw = rng.integers(cfg.low, cfg.high, size=n, endpoint=True).astype(np.float64)
    elif isinstance(cfg, NormalLength):
        raw = rng.normal(cfg.mean, cfg.std, size=n)
    elif isinstance(cfg, LognormalLength):
        raw = cfg.median_tokens * np.exp(cfg.log_sigma * rng.standard_normal(n))
    elif isinstance(cfg, EmpiricalLength):
        path = cfg.path if cfg.path.is_absolute() or base_dir is None else base_dir / cfg.path
        values = read_length_column(path, cfg.column, field=f"{field}.path")
        if len(values) == 0:
            raise InputError(f"{field}.path", str(path), f"column {cfg.column} has no values")
        raw = values[rng.integers(0, len(values), size=n)].astype(np.float64)
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"unknown length config {type(cfg).__name__}")
    lo = max(1, cfg.min or 1)
    hi = cfg.max if cfg.max is not None else MAX_LENGTH
    return np.clip(np.rint(raw), lo, hi).astype(np.int64)
