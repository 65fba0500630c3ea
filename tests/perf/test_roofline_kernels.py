"""How the step model prices prefill and decode attention (tile model or curve) and memory-bound kernels
(copy, norm and generic element-wise curves), by hand on flat-efficiency GPUs."""
from __future__ import annotations

import pytest

from simulator.catalog.engine import EngineProfile
from simulator.catalog.gpu import Curve, DecodeTileModel, TileModel
from simulator.catalog.models import list_models, load_model
from simulator.catalog.engines import list_engines, load_engine
from simulator.perf.ops import ACT_BYTES, UPCAST_NORM_SPLIT, elementwise_parts, shard
from simulator.perf.roofline import curve_for, decode_attention_time, log2, op_time, prefill_attention_time
from simulator.perf.step import BatchShape, StepModel
from simulator.perf.tiles import AttentionCall, decode_tile_time, tile_time

TILES = TileModel(sms=132, launch_s=2e-6, tile_s=5e-6, tile_efficiency=0.3, pair_slowdown=1.6,
                  split_tile_s=5e-6, split_efficiency=0.3, combine_s=2e-6, tail=0.6)


def flat(v: float) -> Curve:
    return Curve(x_feature="x", x=[0, 1], values=[[v, v]])


def with_curves(gpu, **curves):
    eff = gpu.efficiency.model_copy(update={"curves": {**gpu.efficiency.curves, **curves}})
    return gpu.model_copy(update={"efficiency": eff})


def elementwise_totals(model, tp, engine):
    """(bytes per token per layer, kernels per layer) of norms, residual adds, activation and RoPE,
    counted as a whole: the formula the per-curve split has to add up to."""
    h, a = model.hidden_size, ACT_BYTES
    s = shard(model, tp)
    ffn = (model.dense_ffn_size if model.moe is None else model.moe.expert_intermediate_size
           * model.moe.experts_per_token) // tp
    if engine.fused_norm_residual:
        b, kernels = 2 * (3 * h * a), 2          # two fused add+norm: read x, residual; write both
    elif engine.upcast_norm:                     # 8 kernels moving 36 bytes per element, then the add
        b, kernels = 2 * (36.0 * h + 3 * h * a), 2 * (8 + 1)
    else:
        b, kernels = 2 * (2 * h * a + 3 * h * a), 2 * 2
    if model.gated_mlp:
        b, kernels = (b + 3 * ffn * a, kernels + 1) if engine.fused_act_mul else (b + 5 * ffn * a, kernels + 2)
    qk = (s.heads + s.kv_heads) * model.head_dim
    if not engine.fused_rope:                    # x*cos, neg(half), cat, *sin, add on q and on k
        b, kernels = b + 10 * qk * a, kernels + 10
    if model.qk_norm:
        if engine.fused_norm_residual:
            b, kernels = b + 2 * qk * a, kernels + 2
        else:
            b += (36.0 if engine.upcast_norm else 2 * a) * qk
            kernels += 2 * (8 if engine.upcast_norm else 1)
    return b, kernels


def test_elementwise_parts_sum_to_the_totals_for_every_model_and_engine():
    for name in list_models():
        model = load_model(name)
        for e in list_engines():
            eng = load_engine(e)
            b, k = elementwise_totals(model, 1, eng)
            parts = elementwise_parts(model, 1, eng)
            assert sum(p[0] for p in parts.values()) == pytest.approx(b)
            assert sum(p[1] for p in parts.values()) == k


def test_upcast_norm_split_is_the_36_bytes_and_8_kernels():
    assert sum(b for b, _ in UPCAST_NORM_SPLIT.values()) == 36.0
    assert sum(k for _, k in UPCAST_NORM_SPLIT.values()) == 8


def test_norm_and_pointwise_kernels_read_their_own_curves(llama8b, flat_gpu, fused):
    """Fused engine: add+RMSNorm on memory_norm (0.25), fused SiLU*mul on memory (0.5); eager engine:
    upcast norm pieces and RoPE on memory_pointwise (0.125)."""
    gpu = with_curves(flat_gpu, memory_norm=flat(0.25), memory_pointwise=flat(0.125))
    m, L, h, f, bw = 1000, 32, 4096, 14336, 2e12
    t = StepModel(llama8b, gpu, fused).price(BatchShape.prefill(1, m), exact=True, detail=True)
    norm = 2 * 3 * h * 2 * m * L          # two fused add + norm per layer: read x and residual, write both
    act = 3 * f * 2 * m * L               # fused SiLU * mul: read gate and up, write one
    assert t.breakdown["elementwise"] == pytest.approx(norm / bw / 0.25 + act / bw / 0.5)
    eager = EngineProfile(name="eager", description="test", fused_norm_residual=False, fused_act_mul=False,
                          fused_rope=False, upcast_norm=True)
    t = StepModel(llama8b, gpu, eager).price(BatchShape.prefill(1, m), exact=True, detail=True)
    qk = (32 + 8) * 128
    pointwise = (2 * 24 * h + 10 * qk * 2) * m * L           # broadcast norm pieces, RoPE on q and k
    vectorized = (2 * 8 * h + 2 * 3 * h * 2 + 5 * f * 2) * m * L   # pow, residual adds, silu and mul
    reduction = 2 * 4 * h * m * L                               # the mean of each norm
    assert t.breakdown["elementwise"] == pytest.approx(pointwise / bw / 0.125 + vectorized / bw / 0.5
                                                       + reduction / bw / 0.25)


def test_profiles_without_the_new_memory_curves_read_the_memory_curve(flat_gpu):
    assert curve_for(flat_gpu, "memory_norm") == flat_gpu.efficiency.curves["memory"]
    assert curve_for(flat_gpu, "memory_pointwise") == flat_gpu.efficiency.curves["memory"]


def test_without_tile_model_prefill_reads_the_curve(llama8b, flat_gpu, fused):
    # 2 sequences of 1000 tokens, per layer: FLOPs 4 * 32 heads * 128 * pairs; bytes K and V of 8 heads
    # plus q in and out of 32 heads; the larger of FLOPs at 1000 TFLOP/s and bytes at 2 TB/s, over 0.5
    t = StepModel(llama8b, flat_gpu, fused).price(BatchShape.prefill(2, 1000), exact=True, detail=True)
    flops = 4 * 32 * 128 * 2 * (1000 * 1001 / 2)
    nbytes = 2000 * 2 * 8 * 128 * 2 + 2000 * 32 * 256 * 2
    assert t.breakdown["attention_prefill"] == pytest.approx(32 * max(flops / 1e15, nbytes / 2e12) / 0.5)


def test_tile_model_gets_per_gpu_heads_sequences_and_head_dims(llama8b, dsv3, flat_gpu, fused):
    gpu = flat_gpu.model_copy(update={"efficiency": flat_gpu.efficiency.model_copy(
        update={"attention_prefill_tiles": TILES})})
    shape = BatchShape.prefill(3, 700, prefix=300)
    pairs = 3 * (700 * 300 + 700 * 701 / 2)
    t = StepModel(llama8b, gpu, fused, tp=2).price(shape, exact=True, detail=True)
    per_layer = tile_time(TILES, 1e15, AttentionCall(3, 16, 2100, 3000, pairs, 128, 128)).seconds
    assert t.breakdown["attention_prefill"] == pytest.approx(32 * per_layer)
    # MLA prefill attends with q/k head dim 128 + 64 and v head dim 128, 128 heads
    t = StepModel(dsv3, gpu, fused, tp=8, weight_dtype="fp8").price(shape, exact=True, detail=True)
    per_layer = tile_time(TILES, 1e15, AttentionCall(3, 16, 2100, 3000, pairs, 192, 128)).seconds
    assert t.breakdown["attention_prefill"] == pytest.approx(61 * per_layer)


def test_split_kv_prefill_counts_its_combine_kernel(flat_gpu):
    gpu = flat_gpu.model_copy(update={"efficiency": flat_gpu.efficiency.model_copy(
        update={"attention_prefill_tiles": TILES})})
    # 16 heads, 256 queries after 16384 keys: FlashAttention splits the keys (two kernels)
    pairs = 256 * 16384 + 256 * 257 / 2
    t, kernels = prefill_attention_time(gpu, 4 * 16 * 128 * pairs, 1.0, "bf16", AttentionCall(1, 16, 256, 16640, pairs, 128, 128))
    assert kernels == 2 and t.seconds > t.compute_s
    # never faster than reading its bytes
    t, _ = prefill_attention_time(gpu, 1.0, 1e12, "bf16", AttentionCall(1, 16, 256, 16640, pairs, 128, 128))
    assert t.seconds == pytest.approx(1e12 / 2e12)


DECODE_TILES = DecodeTileModel(sms=132, launch_s=2e-6, tile_s=3e-6, tile_rate=1.0, bandwidth_efficiency=0.6,
                               split_tile_s=3e-6, split_rate=3.0, split_bandwidth_efficiency=0.85, combine_s=2e-6,
                               combine_split_s=0.2e-6)


def test_decode_tile_model_gets_streams_per_gpu_and_keys_per_sequence(llama8b, flat_gpu, fused):
    gpu = flat_gpu.model_copy(update={"efficiency": flat_gpu.efficiency.model_copy(
        update={"attention_decode_tiles": DECODE_TILES})})
    # tp 2: 4 KV heads and 16 query heads per GPU; 8 sequences after 4095 cached tokens see 4096 keys
    t = StepModel(llama8b, gpu, fused, tp=2).price(BatchShape.decode(8, 4095), exact=True, detail=True)
    nbytes = 8 * 4096 * 2 * 4 * 128 * 2 + 8 * 16 * 256 * 2      # K and V read, q in and out
    per_layer = decode_tile_time(DECODE_TILES, 2e12, nbytes, 8 * 4, 4096)
    assert per_layer.splits > 1                                   # 32 CTAs for 264 slots: split
    assert t.breakdown["attention_decode"] == pytest.approx(32 * per_layer.seconds)


def test_decode_op_time_and_decode_attention_time_agree(flat_gpu):
    # `servesim estimate` prices decode through op_time at log2 features; the step model through
    # decode_attention_time: same seconds with the tile model, and the curve without it
    gpu = flat_gpu.model_copy(update={"efficiency": flat_gpu.efficiency.model_copy(
        update={"attention_decode_tiles": DECODE_TILES})})
    fl, by = 4.0 * 32 * 128 * 64 * 2048, 64 * 8 * 2048 * 512.0
    t, kernels = decode_attention_time(gpu, fl, by, "bf16", 64 * 8, 2048)
    assert kernels == 1
    via_op = op_time(gpu, "attention_decode", fl, by, "bf16", log2(64 * 8), log2(2048))
    assert via_op.seconds == pytest.approx(t.seconds)
    t, kernels = decode_attention_time(flat_gpu, fl, by, "bf16", 64 * 8, 2048)
    assert kernels == 1 and t.seconds == pytest.approx(by / 2e12 / 0.5)
