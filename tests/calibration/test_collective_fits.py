"""Collective fits and ring extrapolation (hand-computed numbers), the 4-GPU data files' consistency,
the TP-step comparison's kernel accounting, and all-to-all rows on CPU processes (gloo)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calibration import collective_fits as cf
from calibration import tp_compare
from simulator.calibration.io import as_float, read_rows
from simulator.catalog.gpus import load_gpu
from simulator.errors import InputError
from simulator.perf.comm import collective_time

X4 = Path(__file__).resolve().parents[2] / "calibration" / "data" / "h200-sxm-x4"
SIZES = np.array([4.0 ** i * 1024 for i in range(11)])


def test_fit_recovers_exact_alpha_beta():
    a, b = cf.fit_alpha_beta(SIZES, 12e-6 + SIZES / 250e9)
    assert a == pytest.approx(12e-6, rel=1e-9) and b == pytest.approx(250e9, rel=1e-9)
    # noise of +-10% on alternate points: the fit stays within it
    noisy = (12e-6 + SIZES / 250e9) * np.where(np.arange(SIZES.size) % 2, 1.1, 0.9)
    a, b = cf.fit_alpha_beta(SIZES, noisy)
    assert a == pytest.approx(12e-6, rel=0.1) and b == pytest.approx(250e9, rel=0.1)
    with pytest.raises(InputError):
        cf.fit_alpha_beta(SIZES[:1], SIZES[:1] / 1e9)


def test_ring_extrapolation_by_hand():
    fits = {2: {"latency_s": 10e-6, "bandwidth_Bps": 300e9}, 4: {"latency_s": 13e-6, "bandwidth_Bps": 200e9}}
    e = cf.extrapolate(fits, "all-reduce", 8, 450e9)
    # bus bandwidth at 4 = 200 x 2(3)/4 = 300 GB/s; at 8: b = 300 / (2 x 7/8) = 171.43 GB/s
    assert e["bus_bandwidth_Bps"] == pytest.approx(300e9)
    assert e["bandwidth_Bps"] == pytest.approx(300e9 / 1.75)
    assert e["latency_s"] == pytest.approx(19e-6)          # 13 + (13 - 10) / 2 x 4
    # all-gather: N is one GPU's shard, ring factor G - 1
    g = cf.extrapolate({2: {"latency_s": 9e-6, "bandwidth_Bps": 240e9},
                        4: {"latency_s": 8e-6, "bandwidth_Bps": 100e9}}, "all-gather", 8, 250e9)
    assert g["bus_bandwidth_Bps"] == pytest.approx(250e9)  # 300 GB/s capped at the link
    assert g["bandwidth_Bps"] == pytest.approx(250e9 / 7)
    assert g["latency_s"] == pytest.approx(8e-6)            # never below the largest measured group
    with pytest.raises(InputError):
        cf.extrapolate({4: fits[4]}, "all-reduce", 8, 450e9)


def _rows(gpus, a, b, mode="graph", coll="all_reduce"):
    return [{"collective": coll, "gpus": str(gpus), "bytes": str(int(n)), "mode": mode, "seconds": str(a + n / b)}
            for n in SIZES]


def test_fits_json_shape_and_profile_merge(tmp_path):
    rows = _rows(2, 10e-6, 300e9) + _rows(4, 13e-6, 200e9) + _rows(4, 50e-6, 200e9, "eager") + \
        _rows(2, 40e-6, 300e9, "eager")
    doc = cf.fits_json(rows, (4,), (8,), 450e9, "synthetic", "2026-11-22")
    assert doc["extrapolated"] == ["8"]
    assert set(doc["collectives_graph"]["all-reduce"]) == {"4", "8"}
    assert doc["report"]["all-reduce/2/graph"]["median_ape_pct"] == 0.0
    assert doc["report"]["all-reduce/8/graph"]["extrapolated"] is True
    p = tmp_path / "collective_fits.json"
    p.write_text(json.dumps(doc))
    gpu = tp_compare.with_fits(load_gpu("h200-sxm"), p)
    n = 2 ** 20
    assert collective_time(gpu, "all-reduce", n, 4, cuda_graph=True) == pytest.approx(13e-6 + n / 200e9)
    assert collective_time(gpu, "all-reduce", n, 4, cuda_graph=False) == pytest.approx(50e-6 + n / 200e9)
    assert collective_time(gpu, "all-reduce", n, 8, cuda_graph=True) == pytest.approx(19e-6 + n / (300e9 / 1.75))


def _approx(tree):
    """``tree`` with every float wrapped for comparison to 1e-12 relative."""
    if isinstance(tree, dict):
        return {k: _approx(v) for k, v in tree.items()}
    return pytest.approx(tree, rel=1e-12) if isinstance(tree, float) else tree


# ---- the measured 4-GPU data -------------------------------------------------------------
def test_x4_fits_file_matches_its_csv_and_physics():
    doc = json.loads((X4 / "collective_fits.json").read_text())
    rows = read_rows(X4 / "collectives.csv")
    again = cf.fits_json(rows, (4,), (8,), load_gpu("h200-sxm").link_bandwidth, doc["source"], doc["date"])
    # the same fit, to the last bits of a float: numpy releases may sum in another order
    assert again["collectives"] == _approx(doc["collectives"])
    assert again["collectives_graph"] == _approx(doc["collectives_graph"])
    assert doc["source"] and doc["date"] == "2026-11-22"
    link = load_gpu("h200-sxm").link_bandwidth                 # 450 GB/s per direction (datasheet)
    for r in rows:                                             # nccl-tests bus bandwidth under the NVLink rate
        assert as_float(r["busbw_Bps"]) < link
    for table in ("collectives", "collectives_graph"):
        for name, by_g in doc[table].items():
            for g, f in by_g.items():
                assert 5e-6 < f["latency_s"] < 2e-4, (table, name, g)
    # a graph replay never has more latency than an eager launch of the same collective
    for name in doc["collectives"]:
        assert doc["collectives_graph"][name]["4"]["latency_s"] < doc["collectives"][name]["4"]["latency_s"]


def test_kernel_classes_and_scaling():
    assert tp_compare.kernel_class("nccl:all_reduce") is None               # profiler range, not a kernel
    assert tp_compare.kernel_class("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(x)") == "comm"
    assert tp_compare.kernel_class("nvjet_sm90_tst_256x8_64x6_2x1_v_bz_TNT") == "gemm"
    assert tp_compare.kernel_class("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma") == "attention"
    assert tp_compare.kernel_class("void at::native::vectorized_elementwise_kernel<4>") == "other"
    base = {"tp": "2", "phase": "decode", "batch": "1", "seq_or_context": "8", "mode": "graph", "layers_measured": "8"}
    rows = [{**base, "segment": "layers", "kernel": "nvjet_x", "count": "16", "total_s": "1e-3"},
            {**base, "segment": "layers", "kernel": "ncclDevKernel_AllReduce_x", "count": "16", "total_s": "2e-4"},
            {**base, "segment": "layers", "kernel": "nccl:all_reduce", "count": "16", "total_s": "2e-4"},
            {**base, "segment": "outside", "kernel": "ncclDevKernel_AllGather_x", "count": "1", "total_s": "1e-5"}]
    t = tp_compare.kernel_totals(rows)[(2, "decode", 1, 8, "graph", 8)]
    assert t["gemm"] == pytest.approx(1e-2)                    # x 80 / 8
    assert t["comm"] == pytest.approx(2e-3 + 1e-5)             # the nccl: range is not counted
    assert t["kernels"] == pytest.approx(321)
    assert t["allreduce_in_layers_s"] == pytest.approx(2e-4 / 16)


def test_x4_tp_rows_are_consistent():
    rows = {(r["tp"], r["phase"], r["batch"], r["seq_or_context"], r["mode"], r["layers_measured"]): r
            for r in read_rows(X4 / "tp_step.csv")}
    tot = tp_compare.kernel_totals(read_rows(X4 / "tp_step_kernels.csv"))
    assert len(rows) == 29 and len(tot) == 29
    for key, r in rows.items():
        t = tot[(int(key[0]), key[1], int(key[2]), int(key[3]), key[4], int(key[5]))]
        assert as_float(r["comm_s"]) == pytest.approx(t["comm"], rel=1e-5)
        if r["mode"] == "graph":      # kernels of one stream fit inside the elapsed step (NCCL waits aside)
            assert as_float(r["compute_s"]) < as_float(r["step_s"])
    # 8 layers scaled to 80 against all 80 layers built (TP 4, CUDA graphs): within 2%
    for b, c in (("32", "1024"), ("128", "2048")):
        s8 = as_float(rows[("4", "decode", b, c, "graph", "8")]["step_s"])
        s80 = as_float(rows[("4", "decode", b, c, "graph", "80")]["step_s"])
        assert s8 == pytest.approx(s80, rel=0.02)


def test_all_to_all_rows_on_cpu(tmp_path):
    pytest.importorskip("torch")
    from simulator.calibration import collectives

    code = collectives.main(["--out", str(tmp_path), "--gpus", "2", "--device", "cpu", "--modes", "eager",
                             "--collectives", "all_to_all", "--max-bytes", "4096", "--seconds", "60"])
    assert code == 0
    rows = read_rows(tmp_path / "collectives.csv")
    assert [int(r["bytes"]) for r in rows] == [1024, 4096]
    for r in rows:
        assert r["collective"] == "all_to_all" and int(r["total_bytes"]) == int(r["bytes"])
        assert as_float(r["busbw_Bps"]) == pytest.approx(as_float(r["algbw_Bps"]) * 0.5, rel=1e-4)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["collectives"]["groups"]["2"]["points"] == 2
    assert collectives.main(["--out", str(tmp_path), "--device", "cpu", "--modes", "graph"]) == 2
