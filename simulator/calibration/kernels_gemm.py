"""GEMM timings: bf16 ``torch.matmul`` and fp8 ``torch._scaled_mm`` over model weight shapes.

Before the grid, a large bf16 GEMM runs back-to-back for a few seconds so that the GPU reaches its
sustained (power-limited) clock; that clock and the achieved rate are recorded in meta.json.
"""
from __future__ import annotations

import time
from typing import Any

from .context import RunContext
from .io import percentiles
from .shapes import gemm_bytes, gemm_flops, gemm_points

SUSTAIN_S = 5.0
SUSTAIN_SIZE = 8192
FP8_IMPL = "torch._scaled_mm e4m3 per-tensor scales, bf16 out, use_fast_accum=True"


def fp8_supported() -> bool:
    """Hopper or newer CUDA GPU and a torch with ``_scaled_mm`` and float8_e4m3fn."""
    import torch

    if not torch.cuda.is_available() or not hasattr(torch, "float8_e4m3fn"):
        return False
    major, minor = torch.cuda.get_device_capability(0)
    return (major, minor) >= (8, 9) and hasattr(torch, "_scaled_mm")


def sustain(ctx: RunContext) -> dict[str, Any]:
    """Run SUSTAIN_S seconds of 8192^3 bf16 GEMMs; report the rate and clocks over the last half."""
    import torch

    n = SUSTAIN_SIZE if not ctx.quick else 256
    a = torch.randn(n, n, device=ctx.device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=ctx.device, dtype=torch.bfloat16)
    seconds = SUSTAIN_S if ctx.device == "cuda" else 0.2
    t_start = ctx.sampler.now() if ctx.sampler is not None else 0.0
    t0 = time.perf_counter()
    calls, half_calls, half_t0 = 0, 0, None
    while True:
        for _ in range(10):
            torch.matmul(a, b)
        if ctx.device == "cuda":
            torch.cuda.synchronize()
        calls += 10
        el = time.perf_counter() - t0
        if half_t0 is None and el >= seconds / 2:
            half_t0, half_calls = time.perf_counter(), calls
        if el >= seconds:
            break
    t1 = time.perf_counter()
    rate = gemm_flops(n, n, n) * (calls - half_calls) / max(t1 - (half_t0 or t0), 1e-9)
    info: dict[str, Any] = {"size": n, "seconds": round(t1 - t0, 3), "tflops_last_half": rate / 1e12}
    if ctx.sampler is not None:
        win = ctx.sampler.window(t_start + seconds / 2)
        for key in ("sm_clock_mhz", "power_w", "temp_c"):
            vals = [s[key] for s in win if s.get(key) is not None]
            info[f"{key}_median"] = percentiles(vals)[0] if vals else None
        info["throttle_reasons_seen"] = sorted({int(s["throttle_reasons"]) for s in win
                                                if s.get("throttle_reasons") is not None})
    del a, b
    return info


def _maker(m: int, k: int, n: int, dtype: str, device: str):
    import torch

    def make_bf16() -> tuple[Any, Any]:
        return (torch.randn(m, k, device=device, dtype=torch.bfloat16),
                torch.randn(k, n, device=device, dtype=torch.bfloat16))

    def make_fp8() -> tuple[Any, Any, Any, Any]:
        x = torch.randn(m, k, device=device, dtype=torch.bfloat16).to(torch.float8_e4m3fn)
        w = torch.randn(n, k, device=device, dtype=torch.bfloat16).to(torch.float8_e4m3fn).t()
        one = torch.ones((), device=device, dtype=torch.float32)
        return x, w, one, one.clone()

    return make_bf16 if dtype == "bf16" else make_fp8


def _fn(dtype: str):
    import torch

    if dtype == "bf16":
        return lambda s: torch.matmul(s[0], s[1])
    return lambda s: torch._scaled_mm(s[0], s[1], scale_a=s[2], scale_b=s[3], out_dtype=torch.bfloat16,
                                      use_fast_accum=True)


def run(ctx: RunContext) -> None:
    """Measure every GEMM point for bf16 and (where supported) fp8; rows go to gemm.csv."""
    import torch

    log = ctx.csv("gemm")
    dtypes = ["bf16"]
    if ctx.device == "cuda" and fp8_supported():
        dtypes.append("fp8")
    else:
        ctx.log("gemm: fp8 skipped (needs a CUDA GPU of compute capability >= 8.9 and torch._scaled_mm)")
    ctx.notes["gemm_sustain"] = sustain(ctx)
    ctx.log(f"gemm: sustained {ctx.notes['gemm_sustain']}")
    points = gemm_points(ctx.quick)
    share = {"bf16": 0.6, "fp8": 0.4} if len(dtypes) == 2 else {"bf16": 1.0}
    total = ctx.time_left()
    for dtype in dtypes:
        dt_end = time.monotonic() + share[dtype] * total
        done = skipped = 0
        for idx, (m, k, n, labels) in enumerate(points):
            row = {"op": "matmul" if dtype == "bf16" else "scaled_mm", "dtype": dtype, "m": m, "k": k, "n": n}
            if log.has(row):
                continue
            if time.monotonic() >= dt_end or ctx.out_of_time():
                skipped = len(points) - idx
                break
            elem = 2.0 if dtype == "bf16" else 1.0
            flops = gemm_flops(m, k, n)
            nbytes = gemm_bytes(m, k, n, elem, 2.0)
            try:
                meas = ctx.bench.run(_maker(m, k, n, dtype, ctx.device), _fn(dtype),
                                     set_bytes=(m * k + k * n) * elem + m * n * 2.0,
                                     warmup_s=0.1 if flops >= 1e12 else 0.0)
            except torch.cuda.OutOfMemoryError:
                ctx.log(f"gemm {dtype} m={m} k={k} n={n}: out of memory, skipped")
                torch.cuda.empty_cache()
                continue
            log.append({**row, "flops": flops, "bytes": nbytes, **meas.row(), **ctx.clocks(),
                        "impl": "torch.matmul" if dtype == "bf16" else FP8_IMPL, "shapes": labels})
            done += 1
        ctx.log(f"gemm {dtype}: {done} points measured, {skipped} left for lack of time")
        if ctx.device == "cuda":
            torch.cuda.empty_cache()
