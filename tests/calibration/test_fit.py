"""The efficiency fit on synthetic calibration CSVs with known efficiency and alpha-beta laws."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.calibration import fit_grid
from simulator.calibration.fit import fit
from simulator.calibration.io import open_log
from simulator.catalog.gpu import Efficiency
from simulator.catalog.gpus import load_gpu
from simulator.perf.roofline import curve_for, evaluate

GPU = "h100-sxm"


def gemm_eff(m: int, kn: float) -> float:
    """A smooth known efficiency: rises with log2 M and log2 K*N."""
    return 0.30 + 0.03 * math.log2(m) + 0.02 * (math.log2(kn) - 20)


def decode_eff(batch: int, kv: int) -> float:
    return 0.10 + 0.06 * math.log2(batch) + 0.04 * (math.log2(kv) - 7)


def mem_eff(nbytes: float) -> float:
    return min(0.9, 0.05 * (math.log2(nbytes) - 14))


def norm_eff(nbytes: float) -> float:
    """Norms: a higher floor, so a lower efficiency at the same bytes, falling again at the top."""
    x = math.log2(nbytes)
    return 0.04 * (x - 15) if x <= 27 else 0.48 - 0.05 * (x - 27)


def pointwise_eff(per_kernel_bytes: float) -> float:
    return min(0.4, 0.025 * (math.log2(per_kernel_bytes) - 14))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    gpu = load_gpu(GPU)
    peak, bw = gpu.peak_flops("bf16"), gpu.memory_bandwidth
    g = open_log(out, "gemm")
    for k, n in ((1024, 1024), (2048, 4096), (4096, 4096), (4096, 14336), (8192, 28672), (8192, 8192 * 4)):
        for m in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192):
            flops, nbytes = 2.0 * m * k * n, 2.0 * (m * k + k * n + m * n)
            t = max(flops / peak, nbytes / bw) / gemm_eff(m, k * n)
            g.append({"op": "matmul", "dtype": "bf16", "m": m, "k": k, "n": n, "flops": flops, "bytes": nbytes,
                      "event_s": t * 1.3, "kernel_s": t, "repeats": 10})   # kernel_s preferred over event_s
    d = open_log(out, "attention_decode")
    for b in (1, 2, 4, 8, 16, 32, 64, 128):
        for L in (128, 256, 512, 1024, 2048, 4096, 8192):
            flops, nbytes = 4.0 * 32 * 128 * L * b, 2.0 * b * 128 * (2 * 8 * L + 2 * 32)
            t = max(flops / peak, nbytes / bw) / decode_eff(b, L)
            d.append({"op": "decode", "dtype": "bf16", "batch": b, "q_heads": 32, "kv_heads": 8, "head_dim": 128,
                      "kv_len": L, "flops": flops, "bytes": nbytes, "event_s": t, "repeats": 10})
    mem = open_log(out, "memory")
    for op, law in (("copy", mem_eff), ("rmsnorm", norm_eff)):
        for i in range(16, 31):
            nbytes = float(2 ** i)
            mem.append({"op": op, "dtype": "bf16", "numel": 2 ** (i - 2), "hidden": 4096, "flops": 0,
                        "bytes": nbytes, "event_s": nbytes / bw / law(nbytes), "repeats": 10})
    for i in range(16, 31):   # SiLU x mul: minimum bytes 3 x numel; two kernels really move 5 x numel
        numel = 2 ** (i - 1)
        true = 5.0 * numel
        mem.append({"op": "silu_mul", "dtype": "bf16", "numel": numel, "hidden": 4096, "flops": 0,
                    "bytes": 3.0 * numel, "event_s": true / bw / pointwise_eff(true / 2), "repeats": 10})
    c = open_log(out, "collectives")
    for mode, lat, bwc in (("eager", 20e-6, 300e9), ("graph", 8e-6, 300e9)):
        for i in range(10, 31):
            nb = 2 ** i
            t = lat + nb / bwc
            c.append({"collective": "all_reduce", "gpus": 2, "bytes": nb, "total_bytes": nb, "dtype": "bfloat16",
                      "mode": mode, "seconds": t, "p10_s": t, "p90_s": t, "algbw_Bps": nb / t,
                      "busbw_Bps": nb / t, "repeats": 10})
    lg = open_log(out, "launch")
    for mode, s in (("eager", 5e-6), ("graph", 1.5e-6), ("eager_sync_wall", 20e-6)):
        lg.append({"op": "add_1elem", "mode": mode, "launches": 200, "event_s": s, "kernel_s": 1.1e-6,
                   "repeats": 20})
    return out


@pytest.fixture(scope="module")
def result(data):
    return fit(data, GPU)


def test_block_loads_as_profile_efficiency(result):
    eff = Efficiency.model_validate(result["efficiency"])
    assert eff.status == "calibrated"
    assert set(eff.curves) == {"gemm_bf16", "attention_decode", "memory", "memory_norm", "memory_pointwise"}
    assert eff.curves["gemm_bf16"].x_feature == "log2_m" and eff.curves["gemm_bf16"].y_feature == "log2_kn"


def test_known_gemm_efficiency_is_recovered(result):
    eff = Efficiency.model_validate(result["efficiency"])
    gpu = load_gpu(GPU).model_copy(update={"efficiency": eff})
    curve = curve_for(gpu, "gemm", "bf16")
    for m, kn in ((4, 4096 * 4096), (256, 4096 * 14336), (2048, 8192 * 28672)):
        assert evaluate(curve, math.log2(m), math.log2(kn)) == pytest.approx(gemm_eff(m, kn), rel=0.05)
    rep = result["report"]["gemm_bf16"]
    assert rep["held_out"]["median_ape_pct"] < 3.0 and rep["held_out"]["p90_ape_pct"] < 8.0


def test_decode_and_memory_curves(result):
    eff = Efficiency.model_validate(result["efficiency"])
    dec = eff.curves["attention_decode"]
    assert evaluate(dec, math.log2(16), math.log2(2048)) == pytest.approx(decode_eff(16, 2048), rel=0.05)
    mem = eff.curves["memory"]
    assert mem.y == [] and evaluate(mem, 26.0) == pytest.approx(mem_eff(2 ** 26), rel=0.05)
    values = mem.values[0]
    assert values == sorted(values)                  # monotone in bytes
    assert result["report"]["attention_decode"]["held_out"]["median_ape_pct"] < 3.0
    # norms get their own curve, which may fall again (not forced monotone)
    norm = eff.curves["memory_norm"]
    assert evaluate(norm, 24.0) == pytest.approx(norm_eff(2 ** 24), rel=0.05)
    assert evaluate(norm, 30.0) == pytest.approx(norm_eff(2 ** 30), rel=0.05)
    assert evaluate(norm, 30.0) < evaluate(norm, 27.0)
    # SiLU x mul is read at its true bytes per kernel: 5/3 of the minimum, over two kernels
    pw = eff.curves["memory_pointwise"]
    for i in (20, 24, 28):
        assert evaluate(pw, math.log2(5.0 * 2 ** (i - 1) / 2)) == pytest.approx(
            pointwise_eff(5.0 * 2 ** (i - 1) / 2), rel=0.05)


def test_collectives_recover_alpha_beta(result):
    eager = result["efficiency"]["collectives"]["all-reduce"][2]
    graph = result["efficiency"]["collectives_graph"]["all-reduce"][2]
    assert eager["latency_s"] == pytest.approx(20e-6, rel=0.02)
    assert graph["latency_s"] == pytest.approx(8e-6, rel=0.02)
    assert eager["bandwidth_Bps"] == pytest.approx(300e9, rel=0.01)
    assert result["report"]["collectives"]["all-reduce/2/eager"]["held_out"]["p90_ape_pct"] < 1.0


def test_launch_figures(result):
    e = result["efficiency"]
    assert e["launch_overhead_s"] == 5e-6 and e["graph_launch_overhead_s"] == 1.5e-6 and e["min_kernel_s"] == 1.1e-6


def test_bad_inputs(tmp_path):
    from simulator.errors import InputError

    with pytest.raises(InputError):
        fit(tmp_path / "missing", GPU)
    with pytest.raises(InputError, match="decode_feature"):
        fit(tmp_path, GPU, decode_feature="heads")


def test_grid_helpers():
    assert list(fit_grid.isotonic(np.array([1.0, 3.0, 2.0, 4.0]))) == [1.0, 2.5, 2.5, 4.0]
    g = fit_grid.fill_gaps(np.array([[np.nan, 1.0, np.nan, 3.0]]))
    assert g.tolist() == [[1.0, 1.0, 2.0, 3.0]]
    assert fit_grid.holdout_mask(8).tolist() == [False, False, False, True] * 2
    stats = fit_grid.ape_stats(np.array([1.1, 0.9, 1.0]), np.array([1.0, 1.0, 1.0]))
    assert stats["median_ape_pct"] == pytest.approx(10.0) and stats["n"] == 3
