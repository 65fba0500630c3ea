"""Timing of one operation on fresh random inputs: CUDA events (GPU) or wall clock (CPU).

Method: build several independent input sets (``torch.randn``, never zeros) so that together
they exceed the L2 cache several times, warm up, pick a repeat count from a first estimate,
time every call separately and keep median, p10 and p90. Calls shorter than ``queue_below_s``
are queued behind a spin kernel (``torch.cuda._sleep``) that outlasts the host's issuing of all
timed calls, so the GPU runs them back to back and the events hold no launch gaps (``queued``
says whether the host finished issuing in time). Calls shorter than ``profile_below_s`` are
also run under ``torch.profiler`` to read the kernels' own durations (CUPTI).
torch is imported lazily.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .io import percentiles


@dataclass(frozen=True)
class Measurement:
    """Per-call times in seconds."""

    event_s: float
    p10_s: float
    p90_s: float
    repeats: int
    buffers: int
    kernel_s: float | None = None       # summed kernel durations per call (profiler), when profiled
    kernels_per_call: float | None = None
    queued: bool | None = None          # timed calls queued behind a spin kernel (None: not needed)

    def row(self) -> dict[str, object]:
        return {"event_s": self.event_s, "event_p10_s": self.p10_s, "event_p90_s": self.p90_s,
                "kernel_s": self.kernel_s, "kernels_per_call": self.kernels_per_call,
                "repeats": self.repeats, "buffers": self.buffers, "queued": self.queued}


def capture_graph(body: Callable[[], Any], warm: Callable[[], Any] | None = None) -> Any:
    """A CUDA graph of ``body``, captured after one call of ``warm`` (default ``body``) on a side stream
    as capture requires, and replayed once."""
    import torch

    g = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        (warm or body)()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    with torch.cuda.graph(g):
        body()
    g.replay()
    torch.cuda.synchronize()
    return g


@dataclass
class KernelProfile:
    """Kernels seen by the profiler: per-call time, kernels per call, and per-name totals."""

    per_call_s: float
    kernels_per_call: float
    by_name: dict[str, tuple[int, float]]   # name -> (count, total seconds)


def profile_kernels(run: Callable[[int], Any], calls: int, device: str = "cuda") -> KernelProfile:
    """Run ``run(i)`` for i < calls under torch.profiler and sum the device kernels per call.

    When every call launches the same number of kernels the per-call time is the median of the
    per-call sums; otherwise it is the mean.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(calls):
            run(i)
        torch.cuda.synchronize()
    kern = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
            and not e.name.startswith("gpu_user_annotation")]
    kern.sort(key=lambda e: e.time_range.start)
    durs = [(e.time_range.end - e.time_range.start) * 1e-6 for e in kern]
    by_name: dict[str, tuple[int, float]] = {}
    for e, d in zip(kern, durs):
        c, t = by_name.get(e.name, (0, 0.0))
        by_name[e.name] = (c + 1, t + d)
    if not durs:
        return KernelProfile(math.nan, 0.0, by_name)
    if len(durs) % calls == 0:
        k = len(durs) // calls
        sums = [sum(durs[i * k:(i + 1) * k]) for i in range(calls)]
        per_call = percentiles(sums)[0]
    else:
        per_call = sum(durs) / calls
    return KernelProfile(per_call, len(durs) / calls, by_name)


class Bench:
    """Times operations on one device ('cuda' or 'cpu') with input rotation against the L2 cache."""

    def __init__(self, device: str, l2_bytes: int = 50 * 2 ** 20, *, target_s: float = 0.02,
                 min_reps: int = 10, max_reps: int = 100, profile_below_s: float = 50e-6,
                 queue_below_s: float = 1e-3, spin_hz: float = 2.0e9,
                 rotation_bytes: float | None = None, max_rotation_bytes: float = 4 * 2 ** 30) -> None:
        self.device = device
        self.target_s = target_s
        self.min_reps = min_reps if device == "cuda" else 3
        self.max_reps = max_reps if device == "cuda" else 20
        self.profile_below_s = profile_below_s
        self.queue_below_s = queue_below_s
        self.spin_hz = spin_hz          # at least the SM clock, so a spin lasts at least as asked
        self.rotation_bytes = rotation_bytes if rotation_bytes is not None else 4.0 * l2_bytes
        self.max_rotation_bytes = max_rotation_bytes
        self.profile_s = 0.0           # time spent inside profiler sessions (overhead bookkeeping)
        self.profile_errors: list[str] = []

    def buffers_for(self, set_bytes: float) -> int:
        """How many input sets to rotate so that together they exceed ``rotation_bytes``."""
        if self.device != "cuda" or set_bytes <= 0:
            return 1
        n = math.ceil(self.rotation_bytes / set_bytes)
        n = min(n, int(self.max_rotation_bytes // set_bytes), 32)
        return max(1, n)

    def run(self, make: Callable[[], Any], fn: Callable[[Any], Any], set_bytes: float,
            warmup_s: float = 0.0, profile: bool | None = None) -> Measurement:
        """Time ``fn(inputs)`` over rotating input sets made by ``make()``; ``set_bytes`` is the size
        of one set. ``warmup_s`` keeps the operation running first (sustained clocks);
        ``profile`` forces (True) or forbids (False) the profiler pass (default: short calls only)."""
        n = self.buffers_for(set_bytes)
        sets = [make() for _ in range(n)]
        if self.device == "cuda":
            return self._run_cuda(sets, fn, warmup_s, profile)
        return self._run_cpu(sets, fn)

    def _reps(self, t_est: float) -> int:
        if t_est <= 0 or math.isnan(t_est):
            return self.max_reps
        return int(min(self.max_reps, max(self.min_reps, self.target_s / t_est)))

    def _run_cuda(self, sets: list[Any], fn: Callable[[Any], Any], warmup_s: float,
                  profile: bool | None) -> Measurement:
        import torch

        n = len(sets)
        for i in range(max(2, n)):
            fn(sets[i % n])
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        h0 = time.perf_counter()
        start.record()
        for i in range(3):
            fn(sets[i % n])
        end.record()
        issue_s = (time.perf_counter() - h0) / 3      # host time to issue one call
        torch.cuda.synchronize()
        t_est = start.elapsed_time(end) * 1e-3 / 3
        if warmup_s > 0 and t_est > 0:
            for i in range(min(int(warmup_s / t_est), 100_000)):
                fn(sets[i % n])
        reps = self._reps(t_est)
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        spin = getattr(torch.cuda, "_sleep", None)
        queued = None
        spin_s = 0.0
        if spin is not None and t_est < self.queue_below_s:
            spin_s = min(0.2, 1.5 * reps * (issue_s + 5e-6) + 1e-3)
            spin(int(spin_s * self.spin_hz))
        h0 = time.perf_counter()
        for i in range(reps):
            starts[i].record()
            fn(sets[i % n])
            ends[i].record()
        if spin_s > 0:
            queued = time.perf_counter() - h0 < spin_s
        torch.cuda.synchronize()
        times = [s.elapsed_time(e) * 1e-3 for s, e in zip(starts, ends)]
        med, p10, p90 = percentiles(times)
        kernel_s = kpc = None
        if profile or (profile is None and med < self.profile_below_s):
            t0 = time.perf_counter()
            try:
                kp = profile_kernels(lambda i: fn(sets[i % n]), min(reps, 20))
                kernel_s, kpc = kp.per_call_s, kp.kernels_per_call
            except Exception as exc:  # the profiler is optional: keep the event timing
                self.profile_errors.append(f"{type(exc).__name__}: {exc}")
            self.profile_s += time.perf_counter() - t0
        return Measurement(med, p10, p90, reps, n, kernel_s, kpc, queued)

    def _run_cpu(self, sets: list[Any], fn: Callable[[Any], Any]) -> Measurement:
        n = len(sets)
        for i in range(2):
            fn(sets[i % n])
        t0 = time.perf_counter()
        fn(sets[0])
        reps = self._reps(time.perf_counter() - t0)
        times = []
        for i in range(reps):
            t0 = time.perf_counter()
            fn(sets[i % n])
            times.append(time.perf_counter() - t0)
        med, p10, p90 = percentiles(times)
        return Measurement(med, p10, p90, reps, n)
