"""FLOPs and bytes per operation against hand-computed values (dense GQA, MHA, MoE, MLA)."""
from __future__ import annotations

import pytest

from simulator.perf.ops import (attention_cost, expected_active_experts, gemm_cost, layer_gemms, shard)
from simulator.perf.memory import kv_bytes_per_token_per_gpu
from simulator.perf.step import window_pairs
from simulator.errors import InputError


def by_name(gemms):
    return {g.name: g for g in gemms}


def test_llama_gemm_inventory_tp1_and_tp2(llama8b, fused):
    g = by_name(layer_gemms(llama8b, 1, fused))
    assert (g["qkv_proj"].k, g["qkv_proj"].n) == (4096, 4096 + 2 * 1024)
    assert (g["o_proj"].k, g["o_proj"].n) == (4096, 4096)
    assert (g["mlp.gate_up"].k, g["mlp.gate_up"].n) == (4096, 2 * 14336)
    assert (g["mlp.down"].k, g["mlp.down"].n) == (14336, 4096)
    assert (g["lm_head"].k, g["lm_head"].n, g["lm_head"].layers) == (4096, 128256, 1)
    g2 = by_name(layer_gemms(llama8b, 2, fused))
    assert g2["qkv_proj"].n == (4096 + 2 * 1024) // 2        # column-parallel
    assert g2["o_proj"].k == 4096 // 2                       # row-parallel
    assert g2["mlp.down"].k == 14336 // 2
    assert g2["lm_head"].n == 128256 // 2


def test_gemm_flops_and_bytes_by_hand():
    flops, nbytes = gemm_cost(8, 4096, 6144, 2.0)
    assert flops == 2 * 8 * 4096 * 6144
    assert nbytes == (8 * 4096 + 8 * 6144) * 2 + 4096 * 6144 * 2
    _, int4 = gemm_cost(1, 4096, 4096, 0.5 + 2 / 128)
    assert int4 == (4096 + 4096) * 2 + 4096 * 4096 * (0.5 + 2 / 128)


def test_gqa_attention_by_hand(llama8b):
    # prefill of 512 tokens on an empty cache: causal pairs 512*513/2, 32 heads of 128 for QK and PV
    pairs = 512 * 513 / 2
    flops, nbytes = attention_cost(llama8b, 1, "prefill", pairs, 512, 512, "bf16")
    assert flops == 2 * 32 * (128 + 128) * pairs
    assert nbytes == 512 * 2 * 8 * 128 * 2 + 512 * 32 * 256 * 2
    # decode: 4 sequences with 1000 cached tokens each read 4000 tokens of K and V (8 KV heads)
    flops, nbytes = attention_cost(llama8b, 1, "decode", 4000, 4, 4000, "fp8")
    assert flops == 4 * 32 * 128 * 4000
    assert nbytes == 4000 * 2 * 8 * 128 * 1 + 4 * 32 * 256 * 2


def test_mha_inventory_and_kv(mha, fused):
    g = by_name(layer_gemms(mha, 1, fused))
    assert g["qkv_proj"].n == 3 * 1024
    assert "mlp.up" in g and "mlp.gate_up" not in g         # ungated MLP: up + down
    assert kv_bytes_per_token_per_gpu(mha, "bf16") == 2 * 16 * 64 * 4 * 2
    assert kv_bytes_per_token_per_gpu(mha, "bf16", tp=4) == 2 * 4 * 64 * 4 * 2


def test_moe_grouped_gemm_and_routing(mixtral, fused):
    g = by_name(layer_gemms(mixtral, 1, fused))
    e = g["experts.gate_up"]
    assert (e.experts, e.topk, e.k, e.n) == (8, 2, 4096, 2 * 14336)
    assert g["router"].n == 8
    # one token visits exactly top-k experts; many tokens visit all of them
    assert expected_active_experts(1, 8, 2) == pytest.approx(2.0)
    assert expected_active_experts(10_000, 8, 2) == pytest.approx(8.0)
    assert expected_active_experts(4, 256, 8) == pytest.approx(256 * (1 - (1 - 8 / 256) ** 4))


def test_mla_attention_and_cache_by_hand(dsv3, fused):
    g = by_name(layer_gemms(dsv3, 1, fused))
    assert (g["q_a_proj"].k, g["q_a_proj"].n) == (7168, 1536)
    assert (g["q_b_proj"].k, g["q_b_proj"].n) == (1536, 128 * 192)
    assert (g["kv_a_proj"].k, g["kv_a_proj"].n) == (7168, 512 + 64)
    assert (g["kv_b_proj"].k, g["kv_b_proj"].n) == (512, 128 * (128 + 128))
    assert (g["o_proj"].k, g["o_proj"].n) == (128 * 128, 7168)
    assert g["mlp.gate_up"].layers == 3 and g["experts.gate_up"].layers == 58
    # the compressed cache: 512 latent + 64 rope per token per layer (70,272 bytes per token in bf16)
    assert kv_bytes_per_token_per_gpu(dsv3, "bf16") == 576 * 61 * 2 == 70272
    # absorbed decode attends over the latent: QK on 576 dims, PV on 512
    flops, nbytes = attention_cost(dsv3, 1, "decode", 1000, 1, 1000, "bf16")
    assert flops == 2 * 128 * (576 + 512) * 1000
    assert nbytes == 1000 * 576 * 2 + 1 * 128 * (576 + 512) * 2


def test_window_pairs_matches_brute_force():
    for c, p, w in [(10, 0, 4), (10, 3, 4), (5, 100, 8), (64, 0, 128), (300, 50, 128), (1, 0, 1)]:
        brute = sum(min(p + i, w) for i in range(1, c + 1))
        assert window_pairs(c, p, w) == brute


def test_tp_must_divide_heads(llama8b):
    with pytest.raises(InputError, match="tp"):
        shard(llama8b, 3)
    assert shard(llama8b, 16).kv_heads == 1   # KV heads replicated beyond 8-way TP


def test_distinct_experts_match_a_monte_carlo_draw():
    """E·(1 − (1 − k/E)^b) against b tokens each drawing k distinct experts of E uniformly."""
    import numpy as np
    rng = np.random.default_rng(7)
    for tokens, experts, topk in ((8, 128, 8), (8, 64, 6), (32, 128, 8), (1, 64, 6)):
        trials = 4000
        hit = np.zeros((trials, experts), dtype=bool)
        for t in range(tokens):
            picks = np.argsort(rng.random((trials, experts)), axis=1)[:, :topk]
            np.put_along_axis(hit, picks, True, axis=1)
        counts = hit.sum(axis=1)
        se = counts.std(ddof=1) / np.sqrt(trials)
        assert abs(counts.mean() - expected_active_experts(tokens, experts, topk)) < 4 * se + 1e-9


def test_expanded_mla_decode_attention_and_key_copies_by_hand(dsv3):
    """transformers' expanded MLA: decode attends over per-head K (nope + rope = 192) and V (128)
    in bf16, not over the 576-element latent; the key is assembled by two copies."""
    from simulator.perf.ops import mla_expand_copy_bytes
    ctx, heads = 1000, 128
    flops, nbytes = attention_cost(dsv3, 1, "decode", ctx, 1, ctx, "bf16", mla_form="expanded")
    assert flops == 2.0 * heads * (192 + 128) * ctx
    assert nbytes == ctx * heads * (192 + 128) * 2 + 1 * heads * (192 + 128) * 2
    flops_a, nbytes_a = attention_cost(dsv3, 1, "decode", ctx, 1, ctx, "bf16")   # absorbed: the latent
    assert nbytes_a < nbytes / 50 and flops_a == 2.0 * heads * (576 + 512) * ctx
    # copy_(k_nope): read + write 128 per head; copy_(k_rot): read the shared 64, write 64 per head
    assert mla_expand_copy_bytes(dsv3, 1, ctx) == ctx * (2 * 128 * 128 + 64 + 128 * 64) * 2
    assert mla_expand_copy_bytes(dsv3, 2, ctx) == ctx * (2 * 64 * 128 + 64 + 64 * 64) * 2


def test_nvfp4_weights_by_hand(llama8b):
    """NVFP4: 4-bit values plus one E4M3 scale per 16 = 4.5 bits per weight, on fp4 tensor cores."""
    from simulator.perf.memory import weight_bytes_per_gpu
    from simulator.perf.ops import COMPUTE_DTYPE, WEIGHT_BYTES
    assert WEIGHT_BYTES["nvfp4"] == 4.5 / 8 and COMPUTE_DTYPE["nvfp4"] == "fp4"
    fp8 = weight_bytes_per_gpu(llama8b, "fp8")
    fp4 = weight_bytes_per_gpu(llama8b, "nvfp4")
    emb = 2 * 128256 * 4096 * 2.0                     # input and output embeddings stay 16-bit
    assert fp4 - emb == pytest.approx((fp8 - emb) * 0.5625, rel=1e-12)
