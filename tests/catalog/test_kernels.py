"""simulator/catalog/kernels.py: overlay loading and application."""
from __future__ import annotations

import pytest

from simulator.catalog.gpu import Curve, DecodeTileModel
from simulator.catalog.gpus import load_gpu
from simulator.catalog.kernels import KernelFamilyProfile, apply_kernels, load_kernel_profile
from simulator.errors import InputError
from simulator.perf.comm import collective_time
from simulator.perf.roofline import prefill_attention_time
from simulator.perf.tiles import AttentionCall

PROV = {"package": "aiconfigurator-core", "package_version": "0.12.0", "license": "Apache-2.0",
        "tables": [{"path": "systems/data/h100_sxm/gemm/vllm/0.24.0/gemm_perf.parquet", "sha256": "0" * 64,
                    "rows": 10, "rows_used": 8, "kernel_source": "x (10)", "version": "0.24.0"}],
        "fitted": "2026-01-01", "command": "test"}
FLAT = Curve(x_feature="log2_m", x=[0.0, 10.0], values=[[0.5, 0.5]]).model_dump()
DTILES = {"sms": 132, "launch_s": 1e-6, "tile_s": 1e-6, "tile_rate": 1.0, "bandwidth_efficiency": 0.9,
          "split_tile_s": 1e-6, "split_rate": 1.0, "split_bandwidth_efficiency": 0.9, "combine_s": 1e-6,
          "combine_split_s": 1e-7}


def _overlay(**kw: object) -> KernelFamilyProfile:
    doc = {"engine": "vllm", "version": "0.24.0", "gpu": "h100-sxm", "provenance": PROV,
           "efficiency": {"curves": {"gemm_bf16": FLAT, "attention_decode": FLAT}, "attention_prefill_tiles": None},
           **kw}
    return KernelFamilyProfile.model_validate(doc)


def test_apply_replaces_present_keys_and_keeps_the_rest() -> None:
    gpu = load_gpu("h100-sxm")
    assert gpu.efficiency.attention_prefill_tiles is not None
    out = apply_kernels(gpu, _overlay())
    assert out.efficiency.curves["attention_decode"].values == [[0.5, 0.5]]     # replaced
    assert out.efficiency.curves["gemm_bf16"] == gpu.efficiency.curves["gemm_bf16"]  # GEMMs: the profile's own
    assert out.efficiency.curves["gemm_fp8"] == gpu.efficiency.curves["gemm_fp8"]  # kept
    assert out.efficiency.curves["memory"] == gpu.efficiency.curves["memory"]
    assert out.efficiency.attention_prefill_tiles is None                          # present as null: replaced
    assert out.efficiency.attention_decode_tiles == gpu.efficiency.attention_decode_tiles  # absent: kept
    assert out.efficiency.status == gpu.efficiency.status == "calibrated"
    assert "vllm 0.24.0" in (out.efficiency.kernel_overlay or "")
    assert gpu.efficiency.curves["attention_decode"].values != [[0.5, 0.5]]       # the original is untouched


def test_kv_fp8_overlay_applies_only_for_an_fp8_cache() -> None:
    gpu = load_gpu("h100-sxm")
    k = _overlay(kv_fp8={"attention_decode_tiles": DTILES})
    assert apply_kernels(gpu, k, "bf16").efficiency.attention_decode_tiles == gpu.efficiency.attention_decode_tiles
    fp8 = apply_kernels(gpu, k, "fp8").efficiency
    assert fp8.attention_decode_tiles == DecodeTileModel(**DTILES)
    assert fp8.kernel_overlay.endswith("fp8 KV")


def test_wrong_gpu_and_unknown_engine_are_input_errors() -> None:
    with pytest.raises(InputError, match="kernels.gpu"):
        apply_kernels(load_gpu("h200-sxm"), _overlay())
    with pytest.raises(InputError, match="engine"):
        load_kernel_profile("h100-sxm", "tgi")
    assert load_kernel_profile("mi300x", "vllm") is None


@pytest.mark.parametrize("engine", ["vllm", "trtllm"])
def test_engine_overlays_price_long_causal_prefill_faster_than_torch_fa2(engine: str) -> None:
    """FlashAttention-3 (vLLM) and TensorRT-LLM's FMHA against our torch FlashAttention-2 profile on
    one 16k-token causal prefill (32 query heads, 8 KV heads, d 128): the issue reports ~1.9x."""
    gpu = load_gpu("h100-sxm")
    k = load_kernel_profile("h100-sxm", engine)
    assert k is not None
    s, hq, hkv, d = 16384, 32, 8, 128
    pairs = s * (s + 1) / 2
    flops, nbytes = 4.0 * hq * d * pairs, 2.0 * d * (2 * hq * s + 2 * hkv * s)

    def seconds(g):
        return prefill_attention_time(g, flops, nbytes, "bf16", AttentionCall(1.0, hq, s, s, pairs, d, d))[0].seconds

    ratio = seconds(gpu) / seconds(apply_kernels(gpu, k))
    print(f"h100-sxm {engine}: torch FA2 profile / {engine} overlay = {ratio:.2f}x")
    assert 1.3 < ratio < 3.0


@pytest.mark.parametrize("engine,limit", [("vllm", 8 * 2**20 - 16), ("sglang", 8 * 2**20 - 16), ("trtllm", 8e6)])
def test_committed_overlays_carry_the_custom_all_reduce_below_its_limit(engine: str, limit: float) -> None:
    """H100: the engine's own all-reduce for 4 GPUs up to its buffer limit, eager and graph; with the
    overlay applied a 1 MiB all-reduce is priced by that fit and a 64 MiB one by the profile's NCCL fit."""
    gpu = load_gpu("h100-sxm")
    k = load_kernel_profile("h100-sxm", engine)
    assert k is not None
    out = apply_kernels(gpu, k)
    for graph, table in ((False, k.efficiency.collectives), (True, k.efficiency.collectives_graph)):
        f = table["all-reduce"][4]
        assert f.max_bytes == limit and 1e-6 < f.latency_s < 40e-6
        mib, big = 2**20, 2**26
        assert collective_time(out, "all-reduce", mib, 4, graph) == pytest.approx(f.latency_s + mib / f.bandwidth_Bps)
        assert collective_time(out, "all-reduce", big, 4, graph) == collective_time(gpu, "all-reduce", big, 4, graph)


def test_an_engine_version_can_be_pinned_where_the_tables_have_several() -> None:
    from simulator.catalog.engines import load_engine
    from simulator.catalog.kernels import kernel_versions
    from simulator.catalog.model import ModelArch
    from simulator.perf.step import BatchShape, StepModel

    assert kernel_versions("b200", "vllm") == ["0.24.0", "0.22.0"]
    assert load_kernel_profile("b200", "vllm").version == "0.24.0"
    assert load_kernel_profile("b200", "vllm", "0.22.0").version == "0.22.0"
    with pytest.raises(InputError) as info:
        load_kernel_profile("b200", "vllm", "0.9")
    assert info.value.field == "deployment.engine_version" and "0.24.0, 0.22.0" in str(info.value)
    llama = ModelArch(name="llama-3.1-8b", hidden_size=4096, num_layers=32, num_attention_heads=32,
                      num_kv_heads=8, head_dim=128, intermediate_size=14336, vocab_size=128256)
    shape = BatchShape.decode(64, 64 * 2048)
    new = StepModel(llama, load_gpu("b200"), load_engine("vllm")).price(shape, exact=True, detail=True)
    old = StepModel(llama, load_gpu("b200"), load_engine("vllm", "0.22.0")).price(shape, exact=True, detail=True)
    assert old.breakdown["mlp"] == new.breakdown["mlp"]                       # GEMMs: the profile's own
    assert old.breakdown["attention_decode"] != new.breakdown["attention_decode"]   # each version's kernels
    with pytest.raises(InputError, match="engine_version"):
        load_engine("fused", "1.0")                                          # nothing to pin


def test_a_scenario_pins_the_engine_version() -> None:
    from simulator.config.loader import scenario_from_dict
    from simulator.engine.simulate import build_step_model

    base = {"model": "llama-3.1-8b", "deployment": {"gpu": "b200", "engine": "vllm"},
            "workload": {"arrival": {"process": "offline"}, "requests": 4,
                         "prompt_tokens": {"dist": "fixed", "value": 64}, "output_tokens": {"dist": "fixed", "value": 4}}}
    sm = build_step_model(scenario_from_dict(base, {"deployment.engine_version": "0.22.0"}))
    assert sm.engine.kernels.tables_version == "0.22.0"
    with pytest.raises(InputError, match="exist for: 0.24.0, 0.22.0"):
        build_step_model(scenario_from_dict(base, {"deployment.engine_version": "0.1"}))
