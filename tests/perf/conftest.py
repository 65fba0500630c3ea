"""Inline model and GPU descriptions with hand-checkable numbers (independent of the catalogs)."""
from __future__ import annotations

import pytest

from simulator.catalog.engine import EngineProfile
from simulator.catalog.gpu import Curve, Efficiency, GPUProfile
from simulator.catalog.model import MLASpec, ModelArch, MoESpec


def fig(v: float) -> dict:
    return {"value": v, "source": "test", "date": "2026-11-22"}


FLAT = {k: Curve(x_feature="x", x=[0, 1], values=[[0.5, 0.5]])
        for k in ("gemm", "attention_prefill", "attention_decode", "memory")}


@pytest.fixture
def flat_gpu() -> GPUProfile:
    """1000 TFLOP/s bf16, 2 TB/s, efficiency exactly 0.5 everywhere, tiny kernel floor."""
    return GPUProfile(name="flat", display_name="flat", vendor="test",
                      dense_tflops={"bf16": fig(1000), "fp16": fig(1000), "fp8": fig(2000)},
                      memory_gb=fig(80), memory_bandwidth_tbps=fig(2.0), scaleup_bandwidth_gbps=fig(400),
                      host_link_gbps=fig(50),
                      efficiency=Efficiency(curves=FLAT, min_kernel_s=1e-12, launch_overhead_s=1e-12,
                                            graph_launch_overhead_s=1e-12))


@pytest.fixture
def fused() -> EngineProfile:
    return EngineProfile(name="fused", description="test")


@pytest.fixture
def llama8b() -> ModelArch:
    return ModelArch(name="llama-3.1-8b", hidden_size=4096, num_layers=32, num_attention_heads=32, num_kv_heads=8,
                     head_dim=128, intermediate_size=14336, vocab_size=128256)


@pytest.fixture
def mixtral() -> ModelArch:
    return ModelArch(name="mixtral-8x7b", hidden_size=4096, num_layers=32, num_attention_heads=32, num_kv_heads=8,
                     head_dim=128, intermediate_size=14336, vocab_size=32000,
                     moe=MoESpec(num_experts=8, experts_per_token=2, expert_intermediate_size=14336))


@pytest.fixture
def dsv3() -> ModelArch:
    return ModelArch(name="deepseek-v3", hidden_size=7168, num_layers=61, num_attention_heads=128,
                     num_kv_heads=128, head_dim=128, intermediate_size=18432, vocab_size=129280,
                     moe=MoESpec(num_experts=256, experts_per_token=8, expert_intermediate_size=2048,
                                 num_shared_experts=1, first_dense_layers=3, dense_intermediate_size=18432),
                     mla=MLASpec(kv_lora_rank=512, q_lora_rank=1536, qk_nope_head_dim=128, qk_rope_head_dim=64,
                                 v_head_dim=128))


@pytest.fixture
def mha() -> ModelArch:
    """A small multi-head (KV heads = heads) model without gating."""
    return ModelArch(name="mha", hidden_size=1024, num_layers=4, num_attention_heads=16, num_kv_heads=16,
                     head_dim=64, intermediate_size=4096, vocab_size=1000, gated_mlp=False)
