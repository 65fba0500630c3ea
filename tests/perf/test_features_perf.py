"""Time model of the serving optimisations, by hand on a flat-efficiency GPU: multi-token verify steps,
2:4 sparse weights, MoE routing balance and expert parallelism, context parallelism."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.catalog.gpu import Figure, GPUProfile
from simulator.errors import InputError
from simulator.perf.comm import collective_time
from simulator.perf.ops import ExpertPlan, ExpertRouting, expected_active_experts
from simulator.perf.step import BatchShape, StepModel, quantize

from .conftest import fig


@pytest.fixture
def sparse_gpu(flat_gpu) -> GPUProfile:
    return flat_gpu.model_copy(update={"sparse_tflops": {"bf16": Figure(**fig(2000))}})


def test_decode_q1_is_plain_decode(llama8b, flat_gpu, fused):
    sm = StepModel(llama8b, flat_gpu, fused)
    a = sm.price(BatchShape.decode(8, 1000), exact=True, detail=True)
    b = sm.price(BatchShape(decode_seqs=8, decode_ctx=8 * 1001.0, decode_ctx_win=8 * 1001.0, decode_q=1), exact=True, detail=True)
    assert a.wall_s == b.wall_s


def test_verify_step_by_hand(llama8b, flat_gpu, fused):
    """4 sequences feed q = 5 tokens after 1000 cached: 20 token rows, 20 logit rows, q·1000 + 15 pairs each."""
    sm = StepModel(llama8b, flat_gpu, fused)
    t = sm.price(BatchShape.decode(4, 1000, q=5), exact=True, detail=True)
    pairs = 4 * (5 * 1000 + 5 * 6 / 2)
    flops = 2 * 32 * 256 * pairs
    kv_bytes = 4 * 1005 * 2 * 8 * 128 * 2
    io = 20 * 32 * 256 * 2
    attn = max(flops / 1e15, (kv_bytes + io) / 2e12) / 0.5
    assert t.breakdown["attention_decode"] == pytest.approx(32 * attn)
    h, V = 4096, 128256
    lm = max(2 * 20 * h * V / 1e15, ((20 * h + 20 * V) * 2 + h * V * 2) / 2e12) / 0.5
    assert t.breakdown["lm_head"] == pytest.approx(lm)
    one = sm.price(BatchShape.decode(4, 1000), exact=True, detail=True)
    assert t.wall_s > one.wall_s                      # more work than a plain step...
    assert t.wall_s < 2 * one.wall_s                  # ...but far less than five plain steps


def test_sparse24_compute_and_bytes(llama8b, sparse_gpu, fused):
    dense = StepModel(llama8b, sparse_gpu, fused, weight_dtype="bf16")
    sparse = StepModel(llama8b, sparse_gpu, fused, weight_dtype="sparse24")
    big = BatchShape.prefill(4, 2048)                  # compute-bound: the sparse peak is twice the dense one
    assert sparse.price(big, exact=True, detail=True).breakdown["mlp"] == pytest.approx(dense.price(big, exact=True, detail=True).breakdown["mlp"] / 2, rel=1e-3)
    small = BatchShape.decode(1, 100)                  # memory-bound: weights are 1.125 bytes instead of 2
    h, f = 4096, 14336
    w = h * 2 * f + f * h
    act = ((h + 2 * f) + (f + h)) * 2
    assert sparse.price(small, exact=True, detail=True).breakdown["mlp"] == pytest.approx(32 * (act + w * 1.125) / 2e12 / 0.5)
    assert dense.price(small, exact=True, detail=True).breakdown["mlp"] == pytest.approx(32 * (act + w * 2.0) / 2e12 / 0.5)


def test_sparse24_needs_a_sparse_rate(llama8b, flat_gpu, fused):
    with pytest.raises(InputError, match="sparse"):
        StepModel(llama8b, flat_gpu, fused, weight_dtype="sparse24")


def test_uniform_routing_matches_the_closed_form():
    r = ExpertRouting(256, 8, ExpertPlan())
    routed, active = r.load(100)
    assert routed[0] == 800 and active[0] == pytest.approx(expected_active_experts(100, 256, 8))
    ep = ExpertRouting(256, 8, ExpertPlan(ep=8))
    routed, active = ep.load(100)
    assert routed == pytest.approx([100] * 8)       # 800 routed rows over 8 GPUs
    assert active == pytest.approx([expected_active_experts(100, 256, 8) / 8] * 8)


def test_zipf_routing_loads_one_gpu_more():
    z = ExpertRouting(256, 8, ExpertPlan(balance="zipf", skew=1.2, ep=8))
    assert z.popularity.sum() == pytest.approx(1.0)
    assert z.share_max > 1 / 8 + 0.01
    assert z.share_max == pytest.approx(z.shares.max()) and z.shares.sum() == pytest.approx(1.0)
    # with many tokens every expert of the busiest GPU is active: 32 of them
    assert z.load(1e6)[1] == pytest.approx([32.0] * 8)
    # skewed popularity leaves more experts idle at small batches than uniform routing does
    u = ExpertRouting(256, 8, ExpertPlan(ep=1))
    z1 = ExpertRouting(256, 8, ExpertPlan(balance="zipf", skew=1.2))
    assert z1.load(16)[1][0] < u.load(16)[1][0]


def test_expert_parallel_must_divide_experts():
    with pytest.raises(InputError, match="expert_parallel"):
        ExpertRouting(8, 2, ExpertPlan(ep=3))


def test_dp_attention_all_to_all_by_hand(mixtral, flat_gpu, fused):
    """tp = ep = 2 with data-parallel attention: no all-reduce; two all-to-alls per MoE layer."""
    sm = StepModel(mixtral, flat_gpu, fused, tp=2, experts=ExpertPlan(ep=2, dp_attention=True))
    shape = BatchShape.decode(16, 500)
    t = sm.price(shape, exact=True, detail=True)
    m = 16 / 2                                           # each GPU attends for 8 of the 16 sequences
    send = m * 2 * 4096 * 2
    recv = 16 * 2 * 0.5 * 4096 * 2
    a2a = collective_time(flat_gpu, "all-to-all", max(send, recv), 2, cuda_graph=True)
    assert t.breakdown["communication"] == pytest.approx(2 * a2a * 32)
    tp = StepModel(mixtral, flat_gpu, fused, tp=2).price(shape, exact=True, detail=True)
    assert "communication" in tp.breakdown and tp.breakdown["communication"] != t.breakdown["communication"]


def test_skew_slows_expert_parallel_moe(mixtral, flat_gpu, fused):
    shape = BatchShape.prefill(8, 512)
    uni = StepModel(mixtral, flat_gpu, fused, tp=2, experts=ExpertPlan(ep=2)).price(shape, exact=True, detail=True)
    zipf = StepModel(mixtral, flat_gpu, fused, tp=2, experts=ExpertPlan(balance="zipf", skew=2.0, ep=2)).price(shape, exact=True, detail=True)
    assert zipf.breakdown["moe"] > uni.breakdown["moe"]


def test_moe_options_need_a_moe_model(llama8b, flat_gpu, fused):
    with pytest.raises(InputError, match="mixture-of-experts"):
        StepModel(llama8b, flat_gpu, fused, experts=ExpertPlan(ep=1, balance="zipf"))


def test_context_parallel_splits_prefill(llama8b, flat_gpu, fused):
    shape = BatchShape.prefill(1, 32768)
    one = StepModel(llama8b, flat_gpu, fused).price(shape, exact=True, detail=True)
    two = StepModel(llama8b, flat_gpu, fused, cp=2).price(shape, exact=True, detail=True)
    assert two.breakdown["mlp"] == pytest.approx(one.breakdown["mlp"] / 2, rel=1e-3)
    assert two.breakdown["attention_prefill"] == pytest.approx(one.breakdown["attention_prefill"] / 2, rel=0.05)
    assert two.wall_s < 0.6 * one.wall_s
    # decode: the KV is split over the cp GPUs, the partial outputs gathered
    d1 = StepModel(llama8b, flat_gpu, fused).price(BatchShape.decode(4, 100_000), exact=True, detail=True)
    d2 = StepModel(llama8b, flat_gpu, fused, cp=2).price(BatchShape.decode(4, 100_000), exact=True, detail=True)
    assert d2.breakdown["attention_decode"] == pytest.approx(d1.breakdown["attention_decode"] / 2, rel=0.05)
    assert d2.breakdown["communication"] > 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pt=st.integers(0, 4096), ps=st.integers(0, 4), n=st.integers(0, 128), ctx=st.integers(1, 8000),
       q=st.integers(1, 9), cp=st.sampled_from([1, 2]), dp=st.booleans(), zipf=st.booleans())
def test_fast_cost_equals_full_time_with_features(mixtral, flat_gpu, fused, pt, ps, n, ctx, q, cp, dp, zipf):
    if pt == 0 or ps == 0:
        pt = ps = 0
    if pt + n == 0:
        n = 1
    plan = ExpertPlan(balance="zipf" if zipf else "uniform", ep=2, dp_attention=dp)
    sm = StepModel(mixtral, flat_gpu, fused, tp=2, experts=plan, cp=1 if dp else cp)
    b = quantize(BatchShape(prefill_tokens=pt, prefill_seqs=ps, prefill_pairs=pt * (pt + 1) / 2 / max(ps, 1),
                            prefill_kv=pt, decode_seqs=n, decode_ctx=float(n * (ctx + q)), decode_q=q))
    wall, flops, nbytes = sm.price(b, exact=True)
    full = sm.price(b, exact=True, detail=True)
    assert wall == pytest.approx(full.wall_s, rel=1e-12)
    assert flops == pytest.approx(full.flops, rel=1e-12) and nbytes == pytest.approx(full.bytes, rel=1e-12)
    assert np.isfinite(wall) and wall > 0


def test_grouped_moe_streams_all_active_experts_in_one_kernel(dsv3, flat_gpu):
    """An engine with a fused MoE kernel prices the experts' GEMM at the efficiency of one GEMM over
    every active expert's weights (one launch streams them all); without one, each expert's GEMM
    runs alone at the small-GEMM efficiency. Decode of 16 sequences: memory-bound, so time = bytes /
    (bandwidth x efficiency), the efficiency read at log2 of the weights each kernel streams."""
    from simulator.catalog.engine import EngineProfile, KernelFamilies
    from simulator.catalog.gpu import Curve

    # efficiency 0.2 for a 2^20-element weight, rising linearly in log2 to 0.8 at 2^34
    curves = {"gemm": Curve(x_feature="log2_m", x=[0, 14], y_feature="log2_kn", y=[20, 34],
                            values=[[0.2, 0.2], [0.8, 0.8]])}
    gpu = flat_gpu.model_copy(update={"efficiency": flat_gpu.efficiency.model_copy(update={"curves": curves})})
    per = EngineProfile(name="per-expert", description="test")
    grouped = EngineProfile(name="grouped", description="test", kernels=KernelFamilies(moe="fused_moe"))
    rows = 16
    times = {}
    for eng in (per, grouped):
        sm = StepModel(dsv3, gpu, eng, weight_dtype="fp8")
        g = next(g for g in sm.gemms if g.experts > 1 and g.n == 2 * 2048)   # fused gate+up of the experts
        times[eng.name] = sm._gemm(g, rows)[0] / g.layers
    k, n = 7168, 2 * 2048
    active = expected_active_experts(rows, 256, 8)                       # ~99 of 256 experts
    nbytes = active * k * n * 1.0 + rows * 8 * (k + n) * 2               # fp8 weights + bf16 rows in/out
    def eff(elements: float) -> float:
        return 0.2 + 0.6 * (np.log2(elements) - 20) / 14
    assert times["per-expert"] == pytest.approx(nbytes / 2e12 / eff(k * n), rel=1e-6)
    assert times["grouped"] == pytest.approx(nbytes / 2e12 / eff(active * k * n), rel=1e-6)
    assert times["grouped"] < 0.6 * times["per-expert"]


def test_trtllm_all_gathers_quantized_tokens_and_reduce_scatters_by_hand(mixtral, flat_gpu, fused):
    """kernels.moe_dispatch all-gather (TensorRT-LLM): per MoE layer an all-gather of each GPU's tokens in
    the experts' input format (fp8: 1 byte per value) plus 8 x (4 + 2) bytes of expert ids and weights per
    token, and a reduce-scatter of bf16 results priced as the all-gather of the same shards."""
    trt = fused.model_copy(update={"kernels": fused.kernels.model_copy(update={"moe_dispatch": "all-gather"})})
    plan = ExpertPlan(ep=2, dp_attention=True)
    shape = BatchShape.decode(16, 500)
    m = 16 / 2
    gather = collective_time(flat_gpu, "all-gather", m * (4096 * 1.0 + 2 * 6), 2, cuda_graph=True)
    scatter = collective_time(flat_gpu, "all-gather", m * 4096 * 2, 2, cuda_graph=True)
    t = StepModel(mixtral, flat_gpu, trt, tp=2, weight_dtype="fp8", experts=plan).price(shape, exact=True, detail=True)
    assert t.breakdown["communication"] == pytest.approx((gather + scatter) * 32)
    a2a = StepModel(mixtral, flat_gpu, fused, tp=2, weight_dtype="fp8", experts=plan).price(shape, exact=True, detail=True)
    assert t.breakdown["communication"] < a2a.breakdown["communication"]   # fewer bytes than two bf16 all-to-alls
