"""The resource guard: refuse a run whose memory would exceed a limit, before anything is allocated.

A run holds per-request columns (state, the per-request table, the ITL log's spans) and, for each
step-log row and decode step, a few columns (the step log, the ITL log's rows, the laid-out step
durations and their rank matrix while the summary runs). Rows and steps grow with the tokens a run
generates, so the estimate is a fixed cost per request plus a cost per expected output token
(``benchmarks/engine_speed.py``, peak resident memory of simulation, summary and per-request table,
run log ``docs/benchmarks/README.md``, "Peak memory of the summary", 2026-12-07): 1,000,000 requests of
one output token peak at 584 bytes per request above the interpreter (:data:`BYTES_PER_REQUEST`
rounded up, kept), 300 requests of 32,768 output tokens at 6.4 bytes per output token
(:data:`BYTES_PER_OUTPUT_TOKEN`, rounded up), and 1,000,000 chat requests (211 output tokens on
average) at 797 bytes per request, under the 2,688 the two give. Replicas:
134 MB and 180 MB at 1,000 and 10,000 replicas of 10 requests, so 5.1 KB per replica
(:data:`BYTES_PER_REPLICA`, rounded up); about 130 MB of interpreter and libraries. Multi-turn sessions
add prompt segments (a turn repeats the conversation so far, so a session of t turns has about t^2):
66 bytes per segment at the peak of generating 8 million (``turns`` 200 and 400; same machine, 2026),
rounded up to :data:`BYTES_PER_SEGMENT`.

The limit is ``SERVESIM_MEMORY_LIMIT`` (bytes, or with a unit: ``8G``, ``512M``; ``0`` turns the guard
off), else half of this machine's physical memory.
"""
from __future__ import annotations

import math
import os
import re

from ..config.scenario import Scenario
from ..workload.config import (EmpiricalLength, FixedLength, LognormalLength, NormalLength,
                               UniformLength)
from ..errors import InputError

BYTES_PER_REQUEST = 1_000
BYTES_PER_OUTPUT_TOKEN = 8
#: Output tokens per request assumed for lengths resampled from a file without ``max``.
EMPIRICAL_OUTPUT_TOKENS = 1_024
BYTES_PER_REPLICA = 8_000
BYTES_PER_SEGMENT = 80
BASE_BYTES = 200 * 2**20
#: Most replicas a run builds (they are built up front, about 53 microseconds each).
MAX_REPLICAS = 100_000
ENV = "SERVESIM_MEMORY_LIMIT"
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def memory_limit() -> int | None:
    """The limit in bytes (None: no limit)."""
    raw = os.environ.get(ENV, "").strip()
    if raw:
        m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?", raw, re.IGNORECASE)
        if not m:
            raise InputError(ENV, raw, "give bytes or a size such as 8G or 512M (0: no limit)")
        limit = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
        return limit or None
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return None


def replicas_of(s: Scenario) -> int:
    """Replicas the run builds, over every pool and model."""
    d = s.deployment
    n = d.replicas if d.disaggregation is None else d.disaggregation.prefill.replicas + d.disaggregation.decode.replicas
    return n + (d.cascade.small.replicas if d.cascade is not None else 0)


def session_segments(s: Scenario) -> int:
    """Prompt segments that ``workload.sessions`` generates (0 without sessions): a session of t turns
    has t^2 user turns and answers plus a system prompt per turn; for geometric turn counts of mean
    T the expected t^2 per turn is E[t^2] / E[t] = 2T - 1, counted as 2T."""
    w = s.workload
    if w.sessions is None or not w.requests:
        return 0
    n, t = w.requests, w.sessions.turns
    if w.sessions.turns_dist == "fixed":
        whole, rest = divmod(n, t)
        return whole * t * t + rest * rest + n
    return n * (2 * t + 1)


def mean_output_tokens(s: Scenario) -> float:
    """Expected output tokens per request of the workload's length distribution (clipped to its
    ``max``); 0 without one (traces)."""
    c = s.workload.output_tokens
    if c is None:
        return 0.0
    if isinstance(c, FixedLength):
        mean = float(c.value)
    elif isinstance(c, UniformLength):
        mean = (c.low + c.high) / 2
    elif isinstance(c, NormalLength):
        mean = c.mean + c.std
    elif isinstance(c, LognormalLength):
        mean = c.median_tokens * math.exp(min(c.log_sigma ** 2 / 2, 700.0))
    else:
        assert isinstance(c, EmpiricalLength)
        mean = float(c.max or EMPIRICAL_OUTPUT_TOKENS)
    return min(mean, float(c.max)) if c.max is not None else mean


def request_bytes(s: Scenario) -> float:
    """Bytes one request costs at the peak: its columns plus what its output tokens add."""
    return BYTES_PER_REQUEST + mean_output_tokens(s) * BYTES_PER_OUTPUT_TOKEN


def estimate_bytes(s: Scenario) -> int:
    """Peak memory of simulating ``s``, bytes (traces without ``requests`` count as 0 requests here;
    their file size is bounded where they are read)."""
    requests = s.workload.requests or 0
    return int(BASE_BYTES + requests * request_bytes(s) + replicas_of(s) * BYTES_PER_REPLICA
               + session_segments(s) * BYTES_PER_SEGMENT)


def check_memory(s: Scenario) -> None:
    """Raise one :class:`InputError` line when ``s`` would need more memory than the limit."""
    if replicas_of(s) > MAX_REPLICAS:
        raise InputError("deployment.replicas", replicas_of(s), f"a run builds at most {MAX_REPLICAS:,} replicas "
                         "(over every pool and model)")
    limit = memory_limit()
    need = estimate_bytes(s)
    if limit is None or need <= limit:
        return
    requests, replicas = s.workload.requests or 0, replicas_of(s)
    parts = {"workload.requests": (requests * request_bytes(s), requests),
             "deployment.replicas": (replicas * BYTES_PER_REPLICA, replicas),
             "workload.sessions.turns": (session_segments(s) * BYTES_PER_SEGMENT,
                                         s.workload.sessions.turns if s.workload.sessions else 0)}
    field = max(parts, key=lambda f: parts[f][0])
    raise InputError(field, parts[field][1], f"this run would need about {_size(need)} of memory "
                     f"({_size(request_bytes(s))} per request of {mean_output_tokens(s):.0f} output tokens, "
                     f"{BYTES_PER_REPLICA // 1000} KB per replica, "
                     f"{BYTES_PER_SEGMENT} bytes per prompt segment of the sessions: "
                     f"{session_segments(s):,}), over the limit of {_size(limit)}; lower {field} or raise {ENV}")


def _size(n: float) -> str:
    for unit, div in (("PB", 2**50), ("TB", 2**40), ("GB", 2**30), ("MB", 2**20)):
        if n >= div:
            return f"{n / div:.3g} {unit}"
    return f"{n / 2**10:.3g} KB"
