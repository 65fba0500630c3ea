"""The committed GPU profiles are exactly what the calibration fit produces from the committed CSVs."""
from __future__ import annotations

from simulator.calibration.profiles import DB_ENGINE, main, measured_gpus, transfer_source
from simulator.catalog.gpus import load_gpu
from simulator.catalog.kernels import load_kernel_profile


def test_committed_profiles_match_the_fit(capsys):
    assert main(["--check"]) == 0, capsys.readouterr().err


def test_measured_gpus_are_calibrated():
    measured = measured_gpus()
    assert {"h100-sxm", "h200-sxm"} <= set(measured)
    for g in measured:
        eff = load_gpu(g).efficiency
        assert eff.status == "calibrated"
        assert {"gemm_bf16", "gemm_fp8", "attention_decode", "memory", "memory_norm",
                "memory_pointwise"} <= set(eff.curves)
        assert all(0 < v <= 1 for c in eff.curves.values() for row in c.values for v in row)
        # prefill attention: the tile model with the measured GPU's 132 SMs, not a curve
        assert "attention_prefill" not in eff.curves
        assert eff.attention_prefill_tiles is not None and eff.attention_prefill_tiles.sms == 132


def test_transferred_profiles_carry_the_tile_model():
    h100 = load_gpu("h100-pcie").efficiency
    assert h100.status == "transferred"
    assert h100.attention_prefill_tiles == load_gpu(h100.transferred_from).efficiency.attention_prefill_tiles
    assert load_gpu("mi300x").efficiency.attention_prefill_tiles is None    # documented defaults


def test_transfer_rule_picks_nearest_bandwidth_and_skips_other_vendors():
    m = ["h100-sxm", "h200-sxm"]
    assert transfer_source("a100-sxm-80gb", m) == "h100-sxm"      # 2.0 TB/s: closer to 3.35 than 4.8
    assert transfer_source("b200", m) == "h200-sxm"               # 8 TB/s
    assert transfer_source("mi300x", m) is None                   # AMD keeps documented defaults
    assert transfer_source("epyc-9654", m) is None
    assert load_gpu("b200").efficiency.transferred_from == "h200-sxm"      # its memory-bound curves


def test_database_gpus_take_gemm_and_attention_from_the_vllm_overlay():
    for g in ("a100-sxm-80gb", "b200", "gb200", "l40s", "b300", "gb300", "rtx-pro-6000-server"):
        k = load_kernel_profile(g, DB_ENGINE)
        assert k is not None, g
        eff = load_gpu(g).efficiency
        assert eff.status == "calibrated" and "aiconfigurator-core" in eff.source, g
        assert eff.curves["gemm_bf16"] == k.efficiency.curves["gemm_bf16"]
        assert eff.curves["memory"] == load_gpu(eff.transferred_from).efficiency.curves["memory"]
        assert eff.attention_prefill_tiles == k.efficiency.attention_prefill_tiles


def test_database_gpus_price_nvfp4_gemms_on_the_database_nvfp4_curve():
    """FP4: where the database measured NVFP4 GEMMs and the datasheet gives an fp4 peak, fp4 GEMMs read
    that curve (not the bf16 one through fp8); B300 (no dense fp4 figure) keeps none."""
    from simulator.perf.roofline import curve_for
    for g in ("b200", "gb200", "gb300", "rtx-pro-6000-server"):
        k = load_kernel_profile(g, DB_ENGINE)
        eff = load_gpu(g).efficiency
        assert eff.curves["gemm_fp4"] == k.efficiency.curves["gemm_fp4"], g
        assert curve_for(load_gpu(g), "gemm", "fp4") == k.efficiency.curves["gemm_fp4"], g
        assert "calibration/profiles.py FP4" in eff.source, g
    assert "gemm_fp4" not in load_kernel_profile("b300", DB_ENGINE).efficiency.curves
    assert "gemm_fp4" not in load_gpu("b300").efficiency.curves
    assert "gemm_fp4" not in load_gpu("h100-sxm").efficiency.curves   # our own measurements: no fp4 kernels


def test_database_gpus_price_fp8_gemms_at_their_bf16_efficiency():
    """FP8_FROM_BF16: the database's fp8 tables time quantisation and call overheads with the GEMM."""
    for g in ("b200", "gb200", "l40s", "b300", "gb300", "rtx-pro-6000-server"):
        k = load_kernel_profile(g, DB_ENGINE)
        assert "gemm_fp8" in k.efficiency.curves, g            # the database measured fp8 there
        eff = load_gpu(g).efficiency
        assert eff.curves["gemm_fp8"] == k.efficiency.curves["gemm_bf16"], g
        assert eff.curves["gemm_fp8"] != k.efficiency.curves["gemm_fp8"], g
        assert "FP8_FROM_BF16" in eff.source, g
    a100 = load_gpu("a100-sxm-80gb").efficiency                  # no fp8 tensor cores, no fp8 table
    assert "gemm_fp8" not in load_kernel_profile("a100-sxm-80gb", DB_ENGINE).efficiency.curves
    assert a100.curves["gemm_fp8"] == load_gpu(a100.transferred_from).efficiency.curves["gemm_fp8"]
    assert "FP8_FROM_BF16" not in a100.source
