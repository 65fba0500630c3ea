"""Fused MoE and MLA decode priced from an engine's measured kernel families (efficiency.kernels),
checked against FLOPs and bytes counted by hand; without such entries the step model prices as before."""
from __future__ import annotations

import math

import pytest

from simulator.catalog.gpu import Curve, FloorCurve
from simulator.perf.fused_moe import moe_curve, moe_features
from simulator.perf.ops import attention_cost, expected_active_experts, fused_moe_cost
from simulator.perf.step import BatchShape, StepModel

FLAT = Curve(x_feature="x", x=[0, 40], y_feature="y", y=[0, 40], values=[[0.25, 0.25], [0.25, 0.25]])


def priced(sm: StepModel, shape: BatchShape):
    return sm.price(shape, exact=True, detail=True)


def with_kernels(gpu, **kernels):
    eff = gpu.efficiency.model_copy(update={"kernels": kernels})
    return gpu.model_copy(update={"efficiency": eff})


def test_fused_moe_flops_and_bytes_by_hand():
    # 64 routed rows through 8 active experts of a Qwen3-235B-A22B layer (hidden 4096, width 1536), fp8
    fl, by = fused_moe_cost(64, 8, 4096, 1536, True, 1.0)
    assert fl == 2 * 64 * 4096 * 1536 * 3 == 2_415_919_104
    # weights 8 x (4096 x 3072 w13 + 1536 x 4096 w2) at 1 byte; rows: x in (4096) and w13 out (3072),
    # act in (1536) and w2 out (4096), at 2 bytes
    assert by == 8 * 4096 * 1536 * 3 + 2 * 64 * (4096 + 3072 + 1536 + 4096) == 152_633_344
    fl2, by2 = fused_moe_cost(64, 8, 4096, 1536, False, 2.0)   # non-gated: one up projection
    assert fl2 == 2 * 64 * 4096 * 1536 * 2 and by2 == 8 * 4096 * 1536 * 2 * 2 + 2 * 64 * (2 * 4096 + 2 * 1536)


def test_mla_decode_bytes_and_flops_by_hand(dsv3):
    # DeepSeek-V3 at TP 8: 16 heads per GPU attend over the 512 + 64 latent; 32 sequences x 4096 keys
    n, ctx = 32, 32 * 4096
    fl, by = attention_cost(dsv3, 8, "decode", ctx, n, ctx, "bf16")
    assert fl == 2 * 16 * (576 + 512) * ctx
    assert by == ctx * 576 * 2 + n * 16 * (576 + 512) * 2
    _, by8 = attention_cost(dsv3, 8, "decode", ctx, n, ctx, "fp8")
    assert by8 == ctx * 576 * 1 + n * 16 * (576 + 512) * 2


def test_moe_family_replaces_the_expert_gemms(mixtral, flat_gpu, fused):
    base = StepModel(mixtral, flat_gpu, fused)
    gpu = with_kernels(flat_gpu, moe_bf16=FloorCurve(floor_s=10e-6, curve=FLAT))
    assert moe_curve(gpu, "bf16") == "moe_bf16" and moe_curve(gpu, "fp8") is None and moe_curve(flat_gpu, "bf16") is None
    sm = StepModel(mixtral, gpu, fused)
    shape = BatchShape(decode_seqs=16, decode_ctx=16 * 1000)
    t, t0 = priced(sm, shape), priced(base, shape)
    active = expected_active_experts(16, 8, 2)
    fl, by = fused_moe_cost(32, active, 4096, 14336, True, 2.0)
    per_layer = 10e-6 + max(fl / 1000e12, by / 2e12) / 0.25
    assert t.breakdown["moe"] == pytest.approx(32 * per_layer, rel=1e-12)
    assert moe_features(32, active, 4096, 14336, True)[0] == pytest.approx(math.log2(32 / active))
    # the routed experts' activation ran inside the module: 3 x 2 x 14336 x 2 bytes per token less
    assert t0.breakdown["elementwise"] > t.breakdown["elementwise"]
    assert t0.kernels - t.kernels == 32                  # one activation kernel per layer fewer
    for k in ("attention_decode", "qkv_proj", "o_proj", "router", "lm_head"):
        assert t.breakdown[k] == t0.breakdown[k]


def test_fp8_weights_read_the_fp8_family_only(mixtral, flat_gpu, fused):
    gpu = with_kernels(flat_gpu, moe_bf16=FloorCurve(floor_s=1.0, curve=FLAT))
    a = priced(StepModel(mixtral, gpu, fused, weight_dtype="fp8"), BatchShape(decode_seqs=4, decode_ctx=400))
    b = priced(StepModel(mixtral, flat_gpu, fused, weight_dtype="fp8"), BatchShape(decode_seqs=4, decode_ctx=400))
    assert a.breakdown == b.breakdown


def test_mla_family_prices_decode_attention_only(dsv3, flat_gpu, fused):
    gpu = with_kernels(flat_gpu, attention_decode_mla=FloorCurve(floor_s=20e-6, curve=FLAT))
    n, ctx = 8, 8 * 2048
    t = priced(StepModel(dsv3, gpu, fused, tp=8), BatchShape(decode_seqs=n, decode_ctx=ctx))
    t0 = priced(StepModel(dsv3, flat_gpu, fused, tp=8), BatchShape(decode_seqs=n, decode_ctx=ctx))
    fl, by = attention_cost(dsv3, 8, "decode", ctx, n, ctx, "bf16")
    assert t.breakdown["attention_decode"] == pytest.approx(61 * (20e-6 + max(fl / 1000e12, by / 2e12) / 0.25))
    assert {k: v for k, v in t.breakdown.items() if k != "attention_decode"} == \
        {k: v for k, v in t0.breakdown.items() if k != "attention_decode"}
    # prefill is not the family's: unchanged
    p = BatchShape(prefill_tokens=512, prefill_seqs=1, prefill_pairs=512 * 513 / 2, prefill_kv=512)
    on, off = StepModel(dsv3, gpu, fused, tp=8), StepModel(dsv3, flat_gpu, fused, tp=8)
    assert priced(on, p).breakdown == priced(off, p).breakdown


def test_gqa_models_ignore_the_mla_family(llama8b, flat_gpu, fused):
    gpu = with_kernels(flat_gpu, attention_decode_mla=FloorCurve(floor_s=1.0, curve=FLAT),
                       moe_bf16=FloorCurve(floor_s=1.0, curve=FLAT))
    s = BatchShape(decode_seqs=8, decode_ctx=8000)
    on, off = StepModel(llama8b, gpu, fused), StepModel(llama8b, flat_gpu, fused)
    assert priced(on, s).breakdown == priced(off, s).breakdown


def test_shared_experts_stay_gemms_beside_the_fused_module(dsv3, flat_gpu, fused):
    # DeepSeek-V3 at TP 8: the routed experts of its 58 MoE layers are the fused module, the shared
    # expert (width 2048, split over 8 GPUs) keeps its two GEMMs; both land in the "moe" kind
    gpu = with_kernels(flat_gpu, moe_bf16=FloorCurve(floor_s=10e-6, curve=FLAT))
    shape = BatchShape(decode_seqs=8, decode_ctx=8 * 1000)
    t, t0 = priced(StepModel(dsv3, gpu, fused, tp=8), shape), priced(StepModel(dsv3, flat_gpu, fused, tp=8), shape)
    active = expected_active_experts(8, 256, 8)
    fl, by = fused_moe_cost(64, active, 7168, 2048 // 8, True, 2.0)
    routed = 58 * (10e-6 + max(fl / 1000e12, by / 2e12) / 0.25)
    # shared expert: gate+up [7168, 2·256] and down [256, 7168] at 8 rows, bf16, efficiency 0.5
    up = max(2 * 8 * 7168 * 512 / 1000e12, ((8 * 7168 + 8 * 512) * 2 + 7168 * 512 * 2) / 2e12) / 0.5
    down = max(2 * 8 * 256 * 7168 / 1000e12, ((8 * 256 + 8 * 7168) * 2 + 256 * 7168 * 2) / 2e12) / 0.5
    assert t.breakdown["moe"] == pytest.approx(routed + 58 * (up + down), rel=1e-9)
    # one activation kernel per layer either way (the shared expert's), over 256 rather than 8 x 256 columns
    assert t.kernels == t0.kernels and t.breakdown["elementwise"] < t0.breakdown["elementwise"]
