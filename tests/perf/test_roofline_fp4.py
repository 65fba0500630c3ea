"""NVFP4 GEMMs on a profile with a measured ``gemm_fp4`` curve: the slower of the weights streamed at the
fp8 curve's efficiency and the FLOPs at the measured NVFP4 efficiency, by hand on flat curves."""
from __future__ import annotations

import pytest

from simulator.catalog.gpu import Curve
from simulator.catalog.gpus import load_gpu
from simulator.perf.roofline import FP4_GEMM, fp4_gemm_time, log2, op_time


def flat(v: float) -> Curve:
    return Curve(x_feature="x", x=[0, 1], values=[[v, v]])


def b200(fp8: float, fp4: float | None):
    g = load_gpu("b200")
    curves = {k: v for k, v in g.efficiency.curves.items() if k != FP4_GEMM}
    curves["gemm_fp8"] = flat(fp8)
    if fp4 is not None:
        curves[FP4_GEMM] = flat(fp4)
    return g.model_copy(update={"efficiency": g.efficiency.model_copy(update={"curves": curves})})


def cost(m: int, k: int = 8192, n: int = 8192) -> tuple[float, float]:
    """FLOPs and bytes of x[m, k] @ w[k, n] with NVFP4 weights and inputs (0.5625 B with scales), bf16 out."""
    return 2.0 * m * k * n, (m * k + k * n) * 0.5625 + 2.0 * m * n


def test_memory_bound_gemm_streams_at_the_fp8_efficiency():
    g = b200(0.8, 0.4)
    fl, by = cost(16)
    t = op_time(g, "gemm", fl, by, "fp4", log2(16), log2(8192 * 8192))
    assert t.seconds == pytest.approx(by / g.memory_bandwidth / 0.8, rel=1e-12)   # 16 rows: bytes bind
    assert t.bound == "memory"


def test_compute_bound_gemm_runs_at_the_measured_nvfp4_efficiency():
    g = b200(0.8, 0.4)
    fl, by = cost(16384)
    t = op_time(g, "gemm", fl, by, "fp4", log2(16384), log2(8192 * 8192))
    assert t.seconds == pytest.approx(fl / (9000e12 * 0.4), rel=1e-12)    # datasheet dense fp4: 9,000 TFLOP/s
    assert t.seconds > fl / (9000e12 * 0.8)                                 # slower than the fp8-curve rule


@pytest.mark.parametrize("m", [1, 8, 64, 512, 4096, 32768])
def test_never_faster_than_the_stream_rule_and_without_the_curve_it_is_that_rule(m):
    fl, by = cost(m)
    x, y = log2(m), log2(8192 * 8192)
    with_fp4, without = b200(0.7, 0.35), b200(0.7, None)
    rule = op_time(without, "gemm", fl, by, "fp4", x, y)
    t = fp4_gemm_time(with_fp4, fl, by, x, y)
    assert t.seconds >= rule.seconds
    assert t.seconds == pytest.approx(max(rule.seconds, rule.compute_s / 0.35), rel=1e-12)
    assert (t.flops, t.bytes) == (fl, by)


def test_gpus_without_the_curve_keep_their_pricing():
    h100 = load_gpu("h100-sxm")
    assert FP4_GEMM not in h100.efficiency.curves
    fl, by = cost(4096)
    assert op_time(h100, "gemm", fl, by, "fp8", 12.0, 26.0).seconds > 0
