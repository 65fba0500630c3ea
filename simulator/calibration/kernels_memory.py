"""Memory-bound ops (device copy, RMSNorm, SiLU x mul) and per-kernel launch overhead."""
from __future__ import annotations

import time
from typing import Any

from .context import RunContext
from .io import percentiles
from .shapes import MEM_HIDDEN, memory_counts, memory_points
from .timing import capture_graph, profile_kernels

EPS = 1e-6
LAUNCHES = 200      # tiny kernels per timed batch (eager) or per captured graph


def _op(op: str, hidden: int) -> tuple[Any, str]:
    """The function of one input set and a description of how it is computed."""
    import torch
    import torch.nn.functional as F

    if op == "copy":
        return (lambda s: s[1].copy_(s[0])), "Tensor.copy_ (device to device)"
    if op == "rmsnorm":
        if hasattr(F, "rms_norm"):
            return (lambda s: F.rms_norm(s[0], (hidden,), s[1], EPS)), "torch.nn.functional.rms_norm"

        def rms(s: Any) -> Any:
            x = s[0].float()
            return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS)).to(s[0].dtype) * s[1]

        return rms, "torch ops: x*rsqrt(mean(x^2)+eps)*w in fp32"
    if op == "silu_mul":
        def silu_mul(s: Any) -> Any:
            g, u = s[0].chunk(2, dim=-1)
            return F.silu(g) * u

        return silu_mul, "F.silu(x[:, :F]) * x[:, F:] (two kernels)"
    raise ValueError(op)


def _maker(op: str, numel: int, hidden: int, device: str):
    import torch

    rows = max(1, numel // hidden)

    def make() -> tuple[Any, Any]:
        x = torch.randn(rows, hidden, device=device, dtype=torch.bfloat16)
        if op == "copy":
            return x, torch.empty_like(x)
        if op == "rmsnorm":
            return x, torch.randn(hidden, device=device, dtype=torch.bfloat16)
        return (x, None)

    return make


def run_memory(ctx: RunContext) -> None:
    """copy / rmsnorm / silu_mul over input sizes into memory.csv."""
    import torch

    log = ctx.csv("memory")
    points = memory_points(ctx.quick)
    done = 0
    for idx, (op, size) in enumerate(points):
        hidden = MEM_HIDDEN if not ctx.quick else 256
        numel = size // 2
        row = {"op": op, "dtype": "bf16", "numel": numel, "hidden": hidden}
        if log.has(row):
            continue
        if ctx.out_of_time():
            ctx.log(f"memory: {len(points) - idx} points left for lack of time")
            break
        fn, impl = _op(op, hidden)
        flops, nbytes = memory_counts(op, numel, hidden)
        try:
            meas = ctx.bench.run(_maker(op, numel, hidden, ctx.device), fn, set_bytes=nbytes,
                                 profile=True)   # kernels per call tell fused from unfused ops
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            ctx.log(f"memory {row}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        log.append({**row, "flops": flops, "bytes": nbytes, **meas.row(), **ctx.clocks(), "impl": impl})
        done += 1
    ctx.log(f"memory: {done} points measured")


def _timed(fn: Any, per: int, reps: int, dev: str) -> list[float]:
    """Seconds per kernel of ``fn`` (``per`` kernels), ``reps`` times: CUDA events on a GPU, else the clock."""
    import torch

    out = []
    for _ in range(reps):
        if dev == "cuda":
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            torch.cuda.synchronize()
            out.append(s.elapsed_time(e) * 1e-3 / per)
        else:
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) / per)
    return out


def _graph_times(ctx: RunContext, batch: Any, reps: int) -> list[float] | None:
    """Seconds per kernel of ``batch`` replayed from a CUDA graph; None where capture fails."""
    try:
        g = capture_graph(batch)
        return _timed(g.replay, LAUNCHES, reps, "cuda")
    except RuntimeError as exc:
        ctx.log(f"launch: graph capture failed: {exc}")
        return None


def run_launch(ctx: RunContext) -> None:
    """Per-kernel time of a one-element add: eager back-to-back, synchronised round trip, and
    replayed from a CUDA graph (GPU only). Rows go to launch.csv, seconds per kernel."""
    import torch

    log = ctx.csv("launch")
    dev = ctx.device
    x = torch.randn(1, device=dev)
    op = "add_1elem"
    reps = 20 if dev == "cuda" else 5

    def batch() -> None:
        for _ in range(LAUNCHES):
            x.add_(1.0)

    for _ in range(3):
        batch()
    kernel_s = None
    if dev == "cuda":
        torch.cuda.synchronize()
        try:
            kernel_s = profile_kernels(lambda i: x.add_(1.0), 100).per_call_s
        except Exception as exc:
            ctx.log(f"launch: profiler failed: {exc}")
    rows: dict[str, tuple[list[float], int]] = {"eager": (_timed(batch, LAUNCHES, reps, dev), LAUNCHES)}
    sync_times = []
    for _ in range(reps * 5):
        t0 = time.perf_counter()
        x.add_(1.0)
        if dev == "cuda":
            torch.cuda.synchronize()
        sync_times.append(time.perf_counter() - t0)
    rows["eager_sync_wall"] = (sync_times, 1)
    graph = _graph_times(ctx, batch, reps) if dev == "cuda" else None
    if graph is not None:
        rows["graph"] = (graph, LAUNCHES)
    for mode, (times, per) in rows.items():
        row = {"op": op, "mode": mode}
        if log.has(row):
            continue
        med, p10, p90 = percentiles(times)
        log.append({**row, "launches": per, "event_s": med, "event_p10_s": p10, "event_p90_s": p90,
                    "kernel_s": kernel_s, "repeats": len(times)})
    ctx.log("launch: " + ", ".join(f"{m} {percentiles(t)[0] * 1e6:.2f} us/kernel" for m, (t, _) in rows.items()))
