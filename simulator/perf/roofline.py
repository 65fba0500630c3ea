"""Roofline time of one operation: max(FLOPs / peak, bytes / bandwidth) / efficiency(shape).

Efficiency is the achievable fraction of the roofline, read from the GPU profile's curves
(calibrated from measured kernels) or, where a profile has none, from the documented defaults
below. Curves are piecewise linear in log2 of their shape features and clamped at the edges.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from ..catalog.gpu import Curve, GPUProfile
from .tiles import AttentionCall, decode_tile_time, tile_time

#: Uncalibrated defaults (see docs/reference/time-model.md): conservative fractions of the datasheet roofline.
#: GEMM: x = log2(M tokens), y = log2(K*N weight elements).
DEFAULT_CURVES: dict[str, Curve] = {
    "gemm": Curve(x_feature="log2_m", x=[0, 4, 7, 9, 11, 14], y_feature="log2_kn", y=[18, 22, 26, 30],
                  values=[[0.25, 0.25, 0.25, 0.30, 0.35, 0.40],
                          [0.55, 0.55, 0.50, 0.50, 0.60, 0.65],
                          [0.75, 0.75, 0.65, 0.65, 0.72, 0.75],
                          [0.80, 0.80, 0.70, 0.70, 0.75, 0.78]]),
    # attention prefill: x = log2(new tokens per sequence), y = log2(KV length per sequence)
    "attention_prefill": Curve(x_feature="log2_q", x=[0, 7, 10, 13], y_feature="log2_kv", y=[7, 10, 13],
                               values=[[0.15, 0.30, 0.45, 0.50],
                                       [0.20, 0.40, 0.55, 0.60],
                                       [0.25, 0.45, 0.60, 0.65]]),
    # attention decode: x = log2(batch), y = log2(KV length per sequence); memory-bound
    "attention_decode": Curve(x_feature="log2_batch", x=[0, 3, 6, 9], y_feature="log2_kv", y=[7, 10, 14],
                              values=[[0.05, 0.15, 0.35, 0.50],
                                      [0.20, 0.40, 0.60, 0.70],
                                      [0.45, 0.65, 0.75, 0.80]]),
    # elementwise and copies: x = log2(bytes moved)
    "memory": Curve(x_feature="log2_bytes", x=[12, 18, 22, 26, 30], values=[[0.02, 0.25, 0.60, 0.80, 0.85]]),
}
#: Kinds without a default curve of their own: a profile lacking them reads this curve instead
#: (norms and generic element-wise kernels: the "memory" curve, as before they had their own).
FALLBACK = {"memory_norm": "memory", "memory_pointwise": "memory"}


#: The measured NVFP4 GEMM curve of a profile (kernel-database GPUs with fp4 tensor cores): :func:`fp4_gemm_time`.
FP4_GEMM = "gemm_fp4"

#: Dtypes that run on the same tensor-core path as a measured one.
_SAME_CURVE = {"fp16": "bf16", "tf32": "bf16", "int8": "fp8", "fp4": "fp8"}


def _interp1(xs: list[float], ys: list[float], x: float) -> float:
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect_right(xs, x) - 1
    t = (x - xs[i]) / (xs[i + 1] - xs[i])
    return ys[i] + t * (ys[i + 1] - ys[i])


def evaluate(curve: Curve, x: float, y: float | None = None) -> float:
    """Curve value at log2 features (x, y); bilinear, clamped."""
    if not curve.y:
        return _interp1(curve.x, curve.values[0], x)
    ys = curve.y
    yy = ys[0] if y is None else y
    if yy <= ys[0]:
        return _interp1(curve.x, curve.values[0], x)
    if yy >= ys[-1]:
        return _interp1(curve.x, curve.values[-1], x)
    j = bisect_right(ys, yy) - 1
    t = (yy - ys[j]) / (ys[j + 1] - ys[j])
    a = _interp1(curve.x, curve.values[j], x)
    b = _interp1(curve.x, curve.values[j + 1], x)
    return a + t * (b - a)


def curve_for(gpu: GPUProfile, kind: str, dtype: str = "bf16") -> Curve:
    """The profile's curve for an op kind (dtype-specific first, e.g. ``gemm_fp8``), else the default
    (kinds in :data:`FALLBACK` read their fallback kind's curve instead)."""
    curves = gpu.efficiency.curves
    if curves:
        alias = _SAME_CURVE.get(dtype, dtype)
        for key in (f"{kind}_{dtype}", f"{kind}_{alias}", kind):
            if key in curves:
                return curves[key]
    if kind in FALLBACK:
        return curve_for(gpu, FALLBACK[kind], dtype)
    return DEFAULT_CURVES[kind]


def log2(v: float) -> float:
    return math.log2(v) if v > 1 else 0.0


@dataclass(frozen=True)
class OpTime:
    """Predicted time of one operation (seconds) and what bounds it."""

    seconds: float
    flops: float
    bytes: float
    compute_s: float
    memory_s: float

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"


def op_time(gpu: GPUProfile, kind: str, flops: float, nbytes: float, dtype: str,
            x: float, y: float | None = None, *, kernels: int = 1) -> OpTime:
    """Roofline time of ``kernels`` launches doing ``flops`` and ``nbytes`` in all, at features (x, y).

    ``attention_decode`` with the profile's decode tile model reads x = log2(sequences × KV heads),
    y = log2(keys per sequence) and prices it as :func:`decode_attention_time` does."""
    if kind == "attention_decode" and gpu.efficiency.attention_decode_tiles is not None:
        return decode_attention_time(gpu, flops, nbytes, dtype, 2.0 ** x, 2.0 ** (y or 0.0))[0]
    if kind == "gemm" and dtype == "fp4" and FP4_GEMM in gpu.efficiency.curves:
        return fp4_gemm_time(gpu, flops, nbytes, x, y)
    return _over_curve(gpu, curve_for(gpu, kind, dtype), flops, nbytes, dtype, x, y)


def fp4_gemm_time(gpu: GPUProfile, flops: float, nbytes: float, x: float, y: float | None) -> OpTime:
    """An NVFP4 GEMM: the slower of its weights streamed as the fp8 (on database GPUs: bf16) curve
    streams them, and its FLOPs at the measured NVFP4 efficiency (``gemm_fp4``, the engine's whole
    linear call). The measured curve is a share of max(FLOPs, bytes) time; only its compute side is
    taken, since its memory-bound side carries per-call work (activation quantisation, launch) that
    the engines' graph-captured decode steps do not show (docs/guide/calibration.md)."""
    stream = _over_curve(gpu, curve_for(gpu, "gemm", "fp8"), flops, nbytes, "fp4", x, y)
    tensor = stream.compute_s / efficiency(gpu.efficiency.curves[FP4_GEMM], x, y)
    return stream if tensor <= stream.seconds else OpTime(tensor, flops, nbytes, stream.compute_s, stream.memory_s)


def _over_curve(gpu: GPUProfile, curve: Curve, flops: float, nbytes: float, dtype: str, x: float,
                y: float | None, *, floor_s: float = 0.0) -> OpTime:
    """``floor_s`` plus the roofline time max(FLOPs / peak, bytes / bandwidth) over ``curve`` at (x, y)."""
    compute = flops / gpu.peak_flops(dtype) if flops else 0.0
    memory = nbytes / gpu.memory_bandwidth
    return OpTime(floor_s + max(compute, memory) / efficiency(curve, x, y), flops, nbytes, compute, memory)


def efficiency(curve: Curve, x: float, y: float | None = None) -> float:
    """``curve`` at (x, y), kept within [0.001, 1]: the share of its roofline an op reaches."""
    return max(1e-3, min(1.0, evaluate(curve, x, y)))


def floor_curve_time(gpu: GPUProfile, name: str, flops: float, nbytes: float, dtype: str,
                     x: float, y: float | None = None) -> OpTime:
    """A call of the profile's kernel family ``name`` (``efficiency.kernels``: an engine's measured MLA
    decode or fused MoE): its fixed ``floor_s`` plus max(FLOPs / peak, bytes / bandwidth) over the
    family's efficiency curve at (x, y)."""
    fc = gpu.efficiency.kernels[name]
    return _over_curve(gpu, fc.curve, flops, nbytes, dtype, x, y, floor_s=fc.floor_s)


def prefill_attention_time(gpu: GPUProfile, flops: float, nbytes: float, dtype: str,
                           call: AttentionCall) -> tuple[OpTime, int]:
    """One prefill-attention ``call`` on one GPU doing ``flops`` and moving ``nbytes``, and its kernel
    count.

    With the profile's tile model (``efficiency.attention_prefill_tiles``): FlashAttention-2 tiles
    over the SMs (:mod:`simulator.perf.tiles`), never faster than the memory roofline. Without it:
    the ``attention_prefill`` curve at log2(new tokens per sequence), log2(keys per sequence).
    """
    tiles = gpu.efficiency.attention_prefill_tiles
    if tiles is None:
        s = max(call.seqs, 1e-9)
        return op_time(gpu, "attention_prefill", flops, nbytes, dtype, log2(call.q / s), log2(call.kv / s)), 1
    compute = flops / gpu.peak_flops(dtype) if flops else 0.0
    memory = nbytes / gpu.memory_bandwidth
    t = tile_time(tiles, gpu.peak_flops(dtype), call)
    return OpTime(max(t.seconds, memory), flops, nbytes, compute, memory), t.kernels


def decode_attention_time(gpu: GPUProfile, flops: float, nbytes: float, dtype: str, streams: float,
                          kv: float) -> tuple[OpTime, int]:
    """One decode-attention call on one GPU and its kernel count: ``streams`` = sequences × KV heads on
    this GPU, ``kv`` keys per sequence, ``nbytes`` moved in all.

    With the profile's decode tile model (``efficiency.attention_decode_tiles``): FlashAttention-2's
    CTAs streaming the cache (:func:`simulator.perf.tiles.decode_tile_time`), never faster than the
    roofline. Without it: the ``attention_decode`` curve at log2(streams), log2(kv).
    """
    tiles = gpu.efficiency.attention_decode_tiles
    if tiles is None:
        return op_time(gpu, "attention_decode", flops, nbytes, dtype, log2(streams), log2(kv)), 1
    compute = flops / gpu.peak_flops(dtype) if flops else 0.0
    memory = nbytes / gpu.memory_bandwidth
    t = decode_tile_time(tiles, gpu.memory_bandwidth, nbytes, streams, kv)
    return OpTime(max(t.seconds, compute, memory), flops, nbytes, compute, memory), t.kernels
