"""Per-step measurement of the continuous-batching engine: host time vs kernel time.

For each batch size B, B requests with equal prompts start together; after their prompts are in
the cache every step decodes B sequences. The run is made twice: plain (step wall time and host
time of the forward call, from :class:`~calibration.e2e.engine.StepLog`) and under
``torch.profiler`` (CUDA activity only), with a marker kernel at every step start so that the
kernels can be cut into steps: kernels per step, summed kernel time and its split by kernel kind.
These figures, not the end-to-end latencies, set the ``hf-paged`` engine profile.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .engine import StepLog, run_point
from .workload import Point

KINDS = ("gemm", "attention", "gather", "copy", "other")
MARKER_NAMES = ("spin_kernel", "sleep")


def kernel_kind(name: str) -> str:
    """Coarse kind of a CUDA kernel from its name."""
    n = name.lower()
    # attention first: the memory-efficient SDPA kernel is named fmha_cutlassF_* (the profile of
    # calibration/data/e2e-h200, measured before this order, files it under gemm)
    if any(k in n for k in ("fmha", "attention", "flash", "attn", "sdpa")):
        return "attention"
    if any(k in n for k in ("gemm", "cutlass", "xmma", "nvjet", "cublas", "splitk")):
        return "gemm"
    if "index" in n:
        return "gather"
    if "copy" in n or "catarray" in n:
        return "copy"
    return "other"


def is_marker(name: str) -> bool:
    n = name.lower()
    return any(k in n for k in MARKER_NAMES)


def split_steps(kernels: list[tuple[float, float, str]]) -> list[dict[str, float]]:
    """Cut (start, duration s, name) kernels, sorted by start, into steps at the marker kernels;
    kernels before the first marker are dropped. Per step: count, summed time, time per kind."""
    steps: list[dict[str, float]] = []
    cur: dict[str, float] | None = None
    for _, dur, name in sorted(kernels):
        if is_marker(name):
            cur = {"kernels": 0, "kernel_s": 0.0, **{f"{k}_s": 0.0 for k in KINDS}}
            steps.append(cur)
            continue
        if cur is None:
            continue
        cur["kernels"] += 1
        cur["kernel_s"] += dur
        cur[f"{kernel_kind(name)}_s"] += dur
    return steps


def _profiled(fn: Any) -> tuple[Any, list[tuple[float, float, str]]]:
    """Run ``fn()`` under torch.profiler (CUDA activity); its result and the kernels it saw."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        out = fn()
        torch.cuda.synchronize()
    ks = []
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA and not e.name.startswith("gpu_user_annotation"):
            ks.append((float(e.time_range.start), (e.time_range.end - e.time_range.start) * 1e-6, e.name))
    return out, ks


def measure_batches(mgr: Any, log: StepLog, vocab: int, batches: tuple[int, ...], prompt: int, output: int,
                    deadline: float, cuda: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Step rows of the plain and profiled runs for every batch size (see the module docstring),
    kernel totals by name per profiled run, and log lines. Each step row carries ``run``
    (plain|profiled), ``batch`` and the step's shape."""
    rows: list[dict[str, Any]] = []
    names: list[dict[str, Any]] = []
    notes: list[str] = []
    for b in batches:
        for run in ("plain", "profiled") if cuda else ("plain",):
            if time.perf_counter() > deadline:
                notes.append(f"step profile: deadline reached before batch {b} {run}")
                return rows, names, notes
            pt = Point(f"profile-b{b}-{run}", "closed", b, 10_000 + 100 * b, concurrency=b)
            lengths = np.full(b, prompt), np.full(b, output)
            start = len(log.steps)
            log.marker = run == "profiled"
            try:
                if run == "profiled":
                    (reqs, t0), kernels = _profiled(lambda: run_point(mgr, pt, *lengths, None, vocab, 0, deadline))
                else:
                    reqs, t0 = run_point(mgr, pt, *lengths, None, vocab, 0, deadline)
                    kernels = []
            except Exception as e:  # one failed batch must not end the run
                notes.append(f"step profile batch {b} {run} failed: {type(e).__name__}: {e}")
                continue
            finally:
                log.marker = False
            steps = log.rows(start, len(log.steps), t0)
            errors = sum(1 for r in reqs if r.get("error"))
            if run == "profiled":
                names.extend(by_name(kernels, b))
                total = sum(k[1] for k in kernels if not is_marker(k[2]))
                notes.append(f"batch {b} profiled: {len(kernels)} kernels, {total * 1e3:.1f} ms in total")
                cut = split_steps(kernels)
                if len(cut) != len(steps):
                    notes.append(f"step profile batch {b}: {len(cut)} marked kernel groups for {len(steps)} steps")
                for s, k in zip(steps, cut):
                    s.update(k)
            for i, s in enumerate(steps):
                rows.append({"run": run, "batch": b, "step": i, "errors": errors, **s})
            dec = [s for s in steps if s["decode_seqs"] == b and s["prefill_seqs"] == 0]
            if dec:
                w = float(np.median([s["wall_s"] for s in dec]))
                k = float(np.median([s.get("kernel_s", math.nan) for s in dec]))
                notes.append(f"batch {b} {run}: {len(dec)} decode steps, wall {w * 1e3:.2f} ms, kernels {k * 1e3:.2f} ms")
    return rows, names, notes


def by_name(kernels: list[tuple[float, float, str]], batch: int) -> list[dict[str, Any]]:
    """Count and summed time per kernel name (names cut to 200 characters)."""
    acc: dict[str, list[float]] = {}
    for _, dur, name in kernels:
        a = acc.setdefault(name[:200], [0, 0.0])
        a[0] += 1
        a[1] += dur
    return [{"batch": batch, "kind": "marker" if is_marker(k) else kernel_kind(k), "name": k, "count": int(c),
             "total_s": t} for k, (c, t) in sorted(acc.items(), key=lambda kv: -kv[1][1])]
