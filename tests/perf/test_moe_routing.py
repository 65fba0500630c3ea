"""The routing path of transformers' grouped experts: kernel inventory by hand, and where it applies."""
from __future__ import annotations

import pytest

from simulator.catalog.engine import EngineProfile, KernelFamilies
from simulator.catalog.engines import load_engine
from simulator.catalog.models import load_model
from simulator.perf.moe_routing import TORCH_GROUPED_MM, routing_kernels, runs_grouped_routing
from simulator.perf.step import BatchShape, StepModel


def _engine(moe: str | None) -> EngineProfile:
    return EngineProfile(name="t", description="test", kernels=KernelFamilies(moe=moe))


def test_inventory_by_hand():
    """2 tokens, top-2 of 4 experts, hidden 8, expert width 3 (gated: gate_up 6 wide): S = 4 pairs."""
    ks = routing_kernels(2, 2, 8, 4, 3)
    # grouped_mm_experts_forward: sort 3 (copy, index fill, sort), perm // k, 2 gathers, .int(), histc 2,
    # cumsum 2, compare, clamp, 3 masked fills, multiply, arange, index_put, gather back, sum = 21;
    # router: softmax, top-k, weights cast = 3
    assert len(ks) == 24
    assert sum(k.kind == "elementwise" for k in ks) == 5   # 2 casts, the keys copy, multiply, sum
    by = {k.name: k.nbytes for k in ks}
    rows = 4 * 8 * 2                                       # S x hidden bf16 = 64 bytes
    assert by["router softmax"] == 2 * 4 * 2 + 2 * 4 * 4    # bf16 logits in, fp32 probabilities out
    assert by["router topk"] == 2 * 4 * 4 + 4 * (4 + 8)     # fp32 probs in, fp32 values + int64 ids out
    assert by["gather routed rows"] == 2 * rows + 4 * 8     # rows in and out, int64 index
    assert by["masked fill: gate_up out"] == 2 * 4 * 6 * 2 + 4   # bool mask broadcast over 6 columns
    assert by["sum over top-k"] == rows + 2 * 8 * 2         # (2, 2, 8) summed to (2, 8)
    assert by["histc"] == 4 * 4 + 4 * 4                     # int32 ids in, one int32 count per expert out
    assert sum(by.values()) == pytest.approx(1776)


def test_row_traffic_dominates_at_large_hidden():
    """With wide rows the path moves 11 passes over the routed rows (gather, 2 masked fills, multiply,
    gather back: read + write each; sum: read) plus the gate_up masked fill (read + write)."""
    tokens, k, h, e, w = 2048, 8, 8192, 64, 64
    s = tokens * k
    total = sum(x.nbytes for x in routing_kernels(tokens, k, h, e, w))
    assert total == pytest.approx(11 * s * h * 2 + 2 * s * 2 * w * 2, rel=0.02)


def test_step_prices_inventory_on_memory_curve(mixtral, flat_gpu):
    """Flat GPU (2 TB/s at efficiency 0.5, no floor): moe_routing is its bytes x layers at 1 TB/s, and
    the step launches 24 more kernels per MoE layer than an engine with another grouped kernel."""
    shape = BatchShape.decode(4, 100)
    with_r = StepModel(mixtral, flat_gpu, _engine(TORCH_GROUPED_MM)).price(shape, exact=True, detail=True)
    other = StepModel(mixtral, flat_gpu, _engine("cutlass moe")).price(shape, exact=True, detail=True)
    ks = routing_kernels(4, 2, 4096, 8, 14336)
    routing_bytes = sum(x.nbytes for x in ks if x.kind == "moe_routing")
    assert with_r.breakdown["moe_routing"] == pytest.approx(routing_bytes * 32 / 1e12)
    elem_bytes = sum(x.nbytes for x in ks if x.kind == "elementwise")
    assert with_r.breakdown["elementwise"] - other.breakdown["elementwise"] == pytest.approx(elem_bytes * 32 / 1e12)
    assert with_r.kernels - other.kernels == 24 * 32
    assert with_r.breakdown["moe"] == pytest.approx(other.breakdown["moe"])


@pytest.mark.parametrize("moe", [None, "triton fused_moe", "cutlass moe"])
def test_absent_for_engines_without_grouped_mm(mixtral, flat_gpu, moe):
    st = StepModel(mixtral, flat_gpu, _engine(moe)).price(BatchShape.prefill(2, 300), exact=True, detail=True)
    assert "moe_routing" not in st.breakdown


def test_absent_for_dense_models(llama8b, flat_gpu):
    st = StepModel(llama8b, flat_gpu, _engine(TORCH_GROUPED_MM)).price(BatchShape.decode(8, 500), exact=True,
                                                                       detail=True)
    plain = StepModel(llama8b, flat_gpu, _engine(None)).price(BatchShape.decode(8, 500), exact=True, detail=True)
    assert "moe_routing" not in st.breakdown and st.kernels == plain.kernels


def test_catalog_engines():
    """Only the transformers profiles (the same modeling code: grouped_mm experts by default) run it."""
    qwen = load_model("qwen3-30b-a3b")
    assert {n for n in ("hf-eager", "hf-paged", "hf-paged-cudnn", "vllm", "sglang", "trtllm")
            if runs_grouped_routing(load_engine(n), qwen)} == {"hf-eager", "hf-paged", "hf-paged-cudnn"}
    assert not runs_grouped_routing(load_engine("hf-eager"), load_model("llama-3.1-8b"))
