"""The step-time model: roofline arithmetic by hand on a flat-efficiency GPU, and internal consistency."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.catalog.engine import EngineProfile
from simulator.errors import DoesNotFitError, InputError
from simulator.perf.comm import collective_time
from simulator.perf.memory import memory_plan, weight_bytes_per_gpu
from simulator.perf.roofline import op_time
from simulator.perf.step import BatchShape, StepModel, quantize


def test_op_time_is_roofline_over_efficiency(flat_gpu):
    # compute-bound: 1e12 FLOPs at 1000 TFLOP/s and efficiency 0.5 → 2 ms
    t = op_time(flat_gpu, "gemm", 1e12, 1e6, "bf16", 10, 20)
    assert t.seconds == pytest.approx(2e-3) and t.bound == "compute"
    # memory-bound: 1e9 bytes at 2 TB/s and efficiency 0.5 → 1 ms
    t = op_time(flat_gpu, "memory", 0.0, 1e9, "bf16", 30)
    assert t.seconds == pytest.approx(1e-3) and t.bound == "memory"


def test_decode_step_gemm_time_by_hand(llama8b, flat_gpu, fused):
    """Batch-1 decode reads every weight once: the GEMM part is weight bytes / bandwidth / efficiency."""
    sm = StepModel(llama8b, flat_gpu, fused)
    t = sm.price(BatchShape.decode(1, 1000), exact=True, detail=True)
    h, q, kv, f, L, V = 4096, 4096, 1024, 14336, 32, 128256
    qkv_bytes = (h + q + 2 * kv) * 2 + h * (q + 2 * kv) * 2
    assert t.breakdown["qkv_proj"] == pytest.approx(L * qkv_bytes / 2e12 / 0.5)
    mlp_bytes = ((h + 2 * f) * 2 + h * 2 * f * 2) + ((f + h) * 2 + f * h * 2)
    assert t.breakdown["mlp"] == pytest.approx(L * mlp_bytes / 2e12 / 0.5)
    lm_bytes = (h + V) * 2 + h * V * 2
    assert t.breakdown["lm_head"] == pytest.approx(lm_bytes / 2e12 / 0.5)
    # decode attention reads the KV of 1001 tokens in each layer
    attn_bytes = 1001 * 2 * 8 * 128 * 2 + 1 * 32 * 256 * 2
    assert t.breakdown["attention_decode"] == pytest.approx(L * attn_bytes / 2e12 / 0.5)
    assert t.gpu_s == pytest.approx(sum(t.breakdown.values()))


def test_prefill_is_compute_bound_and_scales_with_tokens(llama8b, flat_gpu, fused):
    sm = StepModel(llama8b, flat_gpu, fused)
    a, b = sm.price(BatchShape.prefill(1, 2048), exact=True, detail=True), sm.price(BatchShape.prefill(2, 2048), exact=True, detail=True)
    assert a.bound["mlp"] == "compute"
    assert b.breakdown["mlp"] == pytest.approx(2 * a.breakdown["mlp"], rel=0.01)
    flops = 2 * 2048 * (4096 * 2 * 14336 + 14336 * 4096) * 32
    assert a.breakdown["mlp"] == pytest.approx(flops / 1e15 / 0.5, rel=1e-6)


def test_tensor_parallel_adds_ring_all_reduce(llama8b, flat_gpu, fused):
    sm1, sm2 = StepModel(llama8b, flat_gpu, fused, tp=1), StepModel(llama8b, flat_gpu, fused, tp=2)
    shape = BatchShape.decode(8, 512)
    t1, t2 = sm1.price(shape, exact=True, detail=True), sm2.price(shape, exact=True, detail=True)
    ar = collective_time(flat_gpu, "all-reduce", 8 * 4096 * 2, 2, cuda_graph=True)
    ag = collective_time(flat_gpu, "all-gather", 8 * 128256 / 2 * 4, 2, cuda_graph=True)
    assert t2.breakdown["communication"] == pytest.approx(ar * (2 * 32 + 1) + ag)
    assert t2.breakdown["mlp"] < t1.breakdown["mlp"]          # each GPU holds half the MLP weights


def test_ring_formula_by_hand(flat_gpu):
    n, g = 1e8, 4
    t = collective_time(flat_gpu, "all-reduce", n, g)
    assert t == pytest.approx(9.5e-6 + 1.5e-6 * (g - 2) + 2 * (g - 1) / g * n / (400e9 * 0.8))
    shard = collective_time(flat_gpu, "all-gather", n, g, cuda_graph=True)
    assert shard == pytest.approx(4.5e-6 + 1.5e-6 * (g - 2) + (g - 1) * n / (400e9 * 0.8))
    assert collective_time(flat_gpu, "all-reduce", n, 1) == 0.0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pt=st.integers(0, 4096), ps=st.integers(0, 8), n=st.integers(0, 256), ctx=st.integers(1, 4000))
def test_fast_cost_equals_full_time(llama8b, flat_gpu, fused, pt, ps, n, ctx):
    if pt == 0 or ps == 0:
        pt = ps = 0
    if pt + n == 0:
        n = 1
    sm = StepModel(llama8b, flat_gpu, fused)
    b = quantize(BatchShape(prefill_tokens=pt, prefill_seqs=ps, prefill_pairs=pt * (pt + 1) / 2 / max(ps, 1),
                            prefill_kv=pt, decode_seqs=n, decode_ctx=float(n * ctx)))
    wall, flops, nbytes = sm.price(b, exact=True)
    full = sm.price(b, exact=True, detail=True)
    assert wall == pytest.approx(full.wall_s, rel=1e-12)
    assert flops == pytest.approx(full.flops, rel=1e-12) and nbytes == pytest.approx(full.bytes, rel=1e-12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pt=st.integers(0, 4096), ps=st.integers(0, 8), n=st.integers(0, 256), ctx=st.floats(1, 4e5),
       win=st.booleans())
def test_price_is_the_exact_price_of_the_quantized_shape(llama8b, flat_gpu, fused, pt, ps, n, ctx, win):
    """The engine's path (contexts rounded by the key function, compiled where built) gives the exact
    price of quantize(shape), whether or not its memo already holds the shape."""
    if pt == 0 or ps == 0:
        pt = ps = 0
    if pt + n == 0:
        n = 1
    pairs, kv = pt * (pt + 1) / 2 / max(ps, 1), float(pt)
    w = (pairs * 0.5, kv * 0.5, ctx * 0.5) if win else (None, None, None)
    b = BatchShape(pt, ps, pairs, kv, n, ctx, *w)
    expected = StepModel(llama8b, flat_gpu, fused).price(quantize(b), exact=True)
    sm = StepModel(llama8b, flat_gpu, fused)
    assert sm.price(b) == expected       # memo empty: built
    assert sm.price(b) == expected       # memo hit
    assert sm.price(b, detail=True).wall_s == pytest.approx(expected.wall_s, rel=1e-12)
    cold = StepModel(llama8b, flat_gpu, fused)
    assert cold.cost(tuple(b)) == expected and cold.cost(tuple(b)) == expected   # the engine's entry: built, hit


def test_quantize_changes_contexts_by_under_one_percent():
    b = BatchShape(decode_seqs=37, decode_ctx=123457.0)
    q = quantize(b)
    assert q.decode_ctx == pytest.approx(b.decode_ctx, rel=0.0055)
    assert q.decode_seqs == 37


def test_unfused_engine_launches_more_kernels_and_copies_the_cache(llama8b, flat_gpu, fused):
    eager = EngineProfile(name="eager", description="t", fused_qkv=False, fused_gate_up=False,
                          fused_norm_residual=False, fused_act_mul=False, fused_rope=False,
                          kv_cache="dynamic", cuda_graphs=False, upcast_norm=True)
    a = StepModel(llama8b, flat_gpu, fused).price(BatchShape.decode(4, 2000), exact=True, detail=True)
    b = StepModel(llama8b, flat_gpu, eager).price(BatchShape.decode(4, 2000), exact=True, detail=True)
    assert b.kernels > 2 * a.kernels
    # DynamicCache re-copies the whole cache each step: read + write of 2001 tokens of K and V per layer
    copy = 2 * 4 * 2001 * (2 * 8 * 128 * 2) * 32
    assert b.breakdown["kv_cache"] == pytest.approx(copy / 2e12 / 0.5)


def test_cache_concatenation_costs_a_floor_per_kernel_plus_bytes_over_bandwidth(llama8b, flat_gpu):
    eager = EngineProfile(name="eager", description="t", kv_cache="dynamic", cuda_graphs=False,
                          kv_copy_Bps=2.5e12, kv_copy_floor_s=3e-6)
    flat = eager.model_copy(update={"kv_copy_floor_s": 0.0})
    for seqs, ctx in ((1, 128), (4, 2000), (128, 2048)):
        got = StepModel(llama8b, flat_gpu, eager).price(BatchShape.decode(seqs, ctx), exact=True, detail=True).breakdown["kv_cache"]
        moved = 2 * seqs * (ctx + 1) * (2 * 8 * 128 * 2) * 32     # read + write, K and V, 32 layers
        assert got == pytest.approx(2 * 32 * 3e-6 + moved / 2.5e12, rel=1e-6)
        without = StepModel(llama8b, flat_gpu, flat).price(BatchShape.decode(seqs, ctx), exact=True, detail=True).breakdown["kv_cache"]
        assert got - without == pytest.approx(2 * 32 * 3e-6, rel=1e-6)    # 2 cat kernels per layer


def test_memory_plan_and_does_not_fit(llama8b, flat_gpu):
    plan = memory_plan(llama8b, flat_gpu, "bf16", "bf16", gpu_memory_utilization=0.9)
    assert plan.weight_bytes == pytest.approx(8.03e9 * 2, rel=0.01)
    assert plan.kv_bytes_per_token == 131072
    assert plan.kv_tokens == int((80 * 2**30 * 0.9 - plan.weight_bytes - plan.activation_bytes) // 131072)
    assert weight_bytes_per_gpu(llama8b, "int4") < weight_bytes_per_gpu(llama8b, "fp8") < plan.weight_bytes
    big = llama8b.model_copy(update={"num_layers": 400, "name": "huge"})
    with pytest.raises(DoesNotFitError, match="does not fit"):
        memory_plan(big, flat_gpu, "bf16", "bf16")


def test_bad_dtypes_and_pp(llama8b, flat_gpu, fused):
    with pytest.raises(InputError, match="weight_dtype"):
        StepModel(llama8b, flat_gpu, fused, weight_dtype="fp64")
    with pytest.raises(InputError, match="kv_dtype"):
        StepModel(llama8b, flat_gpu, fused, kv_dtype="int3")
    with pytest.raises(InputError, match="pp"):
        StepModel(llama8b, flat_gpu, fused, pp=64)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pt=st.integers(8, 4096), ps=st.integers(1, 8), n=st.integers(0, 256), ctx=st.floats(1, 4e5))
def test_step_priced_from_parts_other_steps_memoised_costs_what_a_cold_model_gives(llama8b, flat_gpu, fused,
                                                                                  pt, ps, n, ctx):
    """A mixed step missing from the cost memo whose parts other steps have memoised (its prompt chunk's
    attention, its decode attention, the GEMMs of its token count) is priced from them directly; the
    figures are those of a model that builds every part for it."""
    pairs, kv = pt * (pt + 1) / 2 / ps, float(pt)
    cold = StepModel(llama8b, flat_gpu, fused).price(BatchShape(pt, ps, pairs, kv, n, ctx))
    sm = StepModel(llama8b, flat_gpu, fused)
    sm.price(BatchShape(pt, ps, pairs, kv, n + 1, ctx))                    # the chunk's attention
    sm.price(BatchShape(pt + n, ps + n, 1.0, 1.0, 0, 0.0))                 # GEMMs and LM head for pt + n tokens, ps + n rows
    sm.price(BatchShape(pt + 1, ps, pairs + 1.0, kv + 1.0, n, ctx))        # the decode attention
    assert sm.price(BatchShape(pt, ps, pairs, kv, n, ctx)) == cold


def test_expanded_mla_runs_kv_b_proj_over_every_cached_latent(dsv3, flat_gpu):
    """mla_form: expanded prices kv_b_proj over all cached + new latents (b·(c+1) rows) each step,
    where the absorbed form applies it to the b new tokens only; the key copies are added as two
    memory-bound kernels per layer. Flat GPU: 1 PFLOP/s, 2 TB/s, efficiency 0.5 everywhere."""
    from simulator.catalog.engine import EngineProfile
    from simulator.perf.ops import mla_expand_copy_bytes

    absorbed = EngineProfile(name="absorbed", description="test")
    expanded = EngineProfile(name="expanded", description="test", mla_form="expanded")
    b, c, L = 4, 1000, dsv3.num_layers
    shape = BatchShape.decode(b, c)
    st = {e.name: StepModel(dsv3, flat_gpu, e).price(shape, exact=True, detail=True) for e in (absorbed, expanded)}

    def kv_b(m: float) -> float:   # x[m, 512] @ w[512, 128·256] in bf16, per layer
        k, n = 512, 128 * 256
        return L * max(2 * m * k * n / 1e15, ((m * k + m * n) * 2 + k * n * 2) / 2e12) / 0.5

    kv = b * (c + 1)
    got = st["expanded"].breakdown["qkv_proj"] - st["absorbed"].breakdown["qkv_proj"]
    assert got == pytest.approx(kv_b(kv) - kv_b(b), rel=1e-9)
    copies = st["expanded"].breakdown["elementwise"] - st["absorbed"].breakdown["elementwise"]
    assert copies == pytest.approx(mla_expand_copy_bytes(dsv3, 1, kv) * L / 2e12 / 0.5, rel=1e-9)
    assert st["expanded"].flops - st["absorbed"].flops == pytest.approx(
        L * 2 * (kv - b) * 512 * 128 * 256 + L * 2 * 128 * ((192 + 128) - (576 + 512)) * kv, rel=1e-9)


def test_nvfp4_needs_fp4_tensor_cores():
    from simulator.catalog.engines import load_engine
    from simulator.catalog.gpus import load_gpu
    from simulator.catalog.models import load_model
    from simulator.errors import InputError
    from simulator.perf.step import BatchShape, StepModel
    m, e = load_model("llama-3.1-70b"), load_engine("vllm")
    with pytest.raises(InputError, match="h100-sxm has no fp4 tensor cores"):
        StepModel(m, load_gpu("h100-sxm"), e, tp=4, weight_dtype="nvfp4")
    fp8 = StepModel(m, load_gpu("b200"), e, tp=4, weight_dtype="fp8")
    fp4 = StepModel(m, load_gpu("b200"), e, tp=4, weight_dtype="nvfp4")
    shape = BatchShape.decode_total(8, 8 * 2048.0)
    # a small decode batch streams weights: 4.5-bit weights make the GEMMs of the step cheaper
    g8 = fp8.price(shape, detail=True).breakdown
    g4 = fp4.price(shape, detail=True).breakdown
    assert g4["mlp"] < 0.75 * g8["mlp"]
