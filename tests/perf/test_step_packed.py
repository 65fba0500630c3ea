"""Packed-batch masked attention (engine ``attention: packed``, simulator/perf/packed.py), checked
against FLOPs, bytes, seconds and kernel counts computed by hand for a small batch on the flat test
GPU (1000 TFLOP/s, 2 TB/s, efficiency 0.5 everywhere)."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from simulator.catalog.engine import EngineProfile
from simulator.errors import InputError
from simulator.perf.packed import chunk_weight, kernel_efficiency
from simulator.perf.step import BatchShape, StepModel

L, HEADS, KV_HEADS, D = 32, 32, 8, 128      # llama8b fixture


def engine(**kw) -> EngineProfile:
    base = dict(name="packed", description="test", kv_cache="paged", attention="packed", cuda_graphs=False)
    return EngineProfile(**{**base, **kw})


# a 50-token prompt chunk (no prefix) and two decoding sequences with 99 and 299 cached tokens
SHAPE = BatchShape(prefill_tokens=50, prefill_seqs=1, prefill_pairs=50 * 51 / 2, prefill_kv=50,
                   decode_seqs=2, decode_ctx=100 + 300)
Q, KV = 52, 450          # query tokens of the step, keys of every scheduled sequence


def test_packed_attention_prices_every_query_against_every_key(llama8b, flat_gpu) -> None:
    st = StepModel(llama8b, flat_gpu, engine()).price(SHAPE, exact=True, detail=True)
    flops = 2 * HEADS * (D + D) * Q * KV                                   # 383,385,600 per layer
    nbytes = (KV * HEADS * 2 * D + Q * KV + Q * HEADS * 2 * D) * 2         # expanded K/V, bf16 mask, q and out
    assert flops == 383_385_600 and nbytes == 8_271_568
    per_layer = max(flops / 1e15, nbytes / 2e12) / 0.5                     # memory-bound on the flat GPU
    assert st.breakdown["attention_packed"] == pytest.approx(L * per_layer, rel=1e-12)
    gathered = 2 * KV * (2 * KV_HEADS * D * 2) * L                         # K and V pages read + written
    assert st.breakdown["kv_gather"] == pytest.approx(gathered / 2e12 / 0.5, rel=1e-12)
    expanded = KV * (KV_HEADS + HEADS) * D * 2 * 2 * L                     # 8 heads read, 32 written, K and V
    assert st.breakdown["kv_expand"] == pytest.approx(expanded / 2e12 / 0.5, rel=1e-12)
    assert "attention_prefill" not in st.breakdown and "attention_decode" not in st.breakdown


def test_packed_counts_more_work_and_its_own_kernels_than_per_sequence(llama8b, flat_gpu) -> None:
    packed = StepModel(llama8b, flat_gpu, engine()).price(SHAPE, exact=True, detail=True)
    per_seq = StepModel(llama8b, flat_gpu, engine(attention="per_sequence")).price(SHAPE, exact=True, detail=True)
    causal = 50 * 51 / 2 + 400                                              # the pairs per-sequence kernels compute
    extra = 2 * HEADS * (D + D) * (Q * KV - causal) * L
    assert packed.flops - per_seq.flops == pytest.approx(extra, rel=1e-9)
    # attention 1 + gather 2 + expansion 2 + a second cache-write kernel, per layer; minus the two
    # per-sequence attention kernels (prefill and decode) per layer
    assert packed.kernels - per_seq.kernels == (1 + 2 + 2 + 1 - 2) * L


def test_expansion_copies_run_at_the_measured_rate_and_vanish_without_gqa(llama8b, mha, flat_gpu) -> None:
    st = StepModel(llama8b, flat_gpu, engine(kv_copy_Bps=1e12)).price(SHAPE, exact=True, detail=True)
    assert st.breakdown["kv_expand"] == pytest.approx(KV * 40 * D * 4 * L / 1e12, rel=1e-12)
    st_mha = StepModel(mha, flat_gpu, engine()).price(SHAPE, exact=True, detail=True)
    assert "kv_expand" not in st_mha.breakdown


def test_kernel_efficiency_decode_and_chunk_figures(llama8b, flat_gpu) -> None:
    e = engine(packed_attention_efficiency=0.8, packed_attention_efficiency_decode=0.5)
    assert chunk_weight(32) == 0 and chunk_weight(64) == 0 and chunk_weight(512) == 1 and chunk_weight(4096) == 1
    assert kernel_efficiency(e, 128) == pytest.approx(0.5 + 0.3 / 3)       # log2 128 = 7: a third of the way
    assert kernel_efficiency(engine(packed_attention_efficiency=0.8), 8) == 0.8   # decode figure defaults to it
    base = StepModel(llama8b, flat_gpu, engine()).price(SHAPE, exact=True, detail=True).breakdown["attention_packed"]
    slow = StepModel(llama8b, flat_gpu, e).price(SHAPE, exact=True, detail=True).breakdown["attention_packed"]
    assert slow == pytest.approx(base / 0.5, rel=1e-12)                     # 52 queries: decode figure
    chunk = BatchShape.prefill(1, 1024)
    b1 = StepModel(llama8b, flat_gpu, engine()).price(chunk, exact=True, detail=True).breakdown["attention_packed"]
    b2 = StepModel(llama8b, flat_gpu, e).price(chunk, exact=True, detail=True).breakdown["attention_packed"]
    assert b2 == pytest.approx(b1 / 0.8, rel=1e-12)


def test_packed_fast_cost_equals_full_time(llama8b, flat_gpu) -> None:
    sm = StepModel(llama8b, flat_gpu, engine(cpu_launch_per_kernel_s=5e-5, cpu_overhead_per_step_s=1e-3))
    wall, flops, nbytes = sm.price(SHAPE, exact=True)
    full = sm.price(SHAPE, exact=True, detail=True)
    assert wall == pytest.approx(full.wall_s) and flops == pytest.approx(full.flops) and nbytes == pytest.approx(full.bytes)
    assert wall == pytest.approx(full.kernels * 5e-5 + 1e-3)               # host-bound: launches set the wall


def test_packed_refuses_layouts_it_does_not_model(llama8b, dsv3, flat_gpu) -> None:
    with pytest.raises(ValidationError, match="kv_cache: paged"):
        engine(kv_cache="dynamic")
    with pytest.raises(InputError, match="cp"):
        StepModel(llama8b, flat_gpu, engine(), cp=2)
    with pytest.raises(InputError, match="latent"):
        StepModel(dsv3, flat_gpu, engine())


def test_catalog_hf_paged_profiles_count_the_packed_inventory() -> None:
    from simulator.catalog.engines import load_engine
    from simulator.catalog.gpus import load_gpu
    from simulator.catalog.models import load_model

    for name in ("hf-paged", "hf-paged-cudnn"):
        e = load_engine(name)
        assert e.attention == "packed" and e.kv_cache == "paged" and e.status == "calibrated"
        st = StepModel(load_model("llama-3.1-8b"), load_gpu("h200-sxm"), e).price(BatchShape.decode(1, 1048), exact=True, detail=True)
        # per layer: 7 projections, 2 RMSNorms of 8, 2 residual adds, RoPE 10, SiLU and multiply 2,
        # attention 1, cache write 2, gather 2, expansion 2 = 44; per step: embedding, LM head, 4 sampling
        assert st.kernels == 44 * 32 + 6 == 1414
