"""Shape grids and FLOP/byte counts against hand-computed numbers."""
from __future__ import annotations

from simulator.calibration import shapes as s


def test_llama_8b_and_70b_linear_shapes_by_hand():
    l8 = s.linear_shapes(s.MODELS["llama-3.1-8b"], 1)
    assert l8 == {"qkv": (4096, (32 + 16) * 128), "o": (4096, 4096), "gate_up": (4096, 28672),
                  "down": (14336, 4096), "lm_head": (4096, 128256)}
    # 70B at TP8: 8 query heads and one KV head per GPU -> (8 + 2) * 128 = 1280
    l70 = s.linear_shapes(s.MODELS["llama-3.1-70b"], 8)
    assert l70["qkv"] == (8192, 1280) and l70["o"] == (1024, 8192)
    assert l70["gate_up"] == (8192, 7168) and l70["down"] == (3584, 8192) and l70["lm_head"] == (8192, 16032)


def test_kv_heads_replicate_beyond_their_count():
    q30 = s.MODELS["qwen3-30b-a3b"]             # 4 KV heads
    assert [s.kv_heads_per_gpu(q30, tp) for tp in (1, 2, 4, 8)] == [4, 2, 1, 1]


def test_gemm_shapes_are_deduplicated_and_full_grid_first():
    shapes = s.gemm_shapes()
    kns = [(x.k, x.n) for x in shapes]
    assert len(kns) == len(set(kns))
    # Mixtral-8x7B attention and expert shapes equal Llama-3.1-8B's: one entry with both labels
    qkv = next(x for x in shapes if (x.k, x.n) == (4096, 6144))
    assert "llama-3.1-8b:qkv:tp1" in qkv.labels and "mixtral-8x7b:qkv:tp1" in qkv.labels
    flags = [x.full_grid for x in shapes]
    assert flags == sorted(flags, reverse=True)
    # every fp8-eligible shape: K and N multiples of 16 (torch._scaled_mm requirement)
    assert all(k % 16 == 0 and n % 16 == 0 for k, n in kns)


def test_gemm_counts():
    assert s.gemm_flops(2, 3, 5) == 60.0
    # x 2x3, w 3x5 in fp8 (1 byte) + out 2x5 in bf16 (2 bytes) = 6 + 15 + 20
    assert s.gemm_bytes(2, 3, 5, 1.0, 2.0) == 41.0


def test_attention_counts_by_hand():
    # chunk of 2 new tokens after 3 cached: token 1 sees 4 keys, token 2 sees 5 -> 9 pairs
    assert s.causal_pairs(2, 3) == 9
    assert s.causal_pairs(4, 0) == 10
    assert s.prefill_flops(1, 2, 8, 2, 3) == 4 * 2 * 8 * 9
    # q,out: 2 heads x 2 tokens x 8; k,v: 1 head x 5 tokens x 8; 2 bytes each
    assert s.prefill_bytes(1, 2, 1, 8, 2, 3) == 2 * (2 * 2 * 2 * 8 + 2 * 1 * 5 * 8)
    assert s.decode_flops(3, 32, 128, 1000) == 4 * 32 * 128 * 1000 * 3
    assert s.decode_bytes(1, 32, 8, 128, 1000) == 2 * 8 * 128 * 1000 * 2 + 2 * 32 * 128 * 2


def test_grids_respect_caps():
    assert all(b * n <= s.PREFILL_MAX_TOKENS for op, b, _, n, _ in s.prefill_points() if op == "prefill")
    assert all(s.kv_bytes(b, c[1], c[2], L) <= s.DECODE_MAX_KV_BYTES for b, c, L in s.decode_points())
    ops = {op for op, *_ in s.prefill_points()}
    assert ops == {"prefill", "chunked_prefill"}


def test_memory_counts_and_bus_factors():
    assert s.memory_counts("copy", 1000, 100) == (0.0, 4000.0)
    assert s.memory_counts("rmsnorm", 1000, 100)[1] == 2 * (2000 + 100)
    assert s.memory_counts("silu_mul", 1000, 100)[1] == 2 * 1500
    assert s.bus_factor("all_reduce", 2) == 1.0 and s.bus_factor("all_reduce", 8) == 1.75
    assert s.bus_factor("all_gather", 4) == 0.75


def test_model_kv_bytes_llama8b():
    # 32 layers x 8 KV heads x 128 dims x (K and V) x 2 bytes = 131072 bytes per token
    assert s.model_kv_bytes(s.MODELS["llama-3.1-8b"], 1, 1) == 131072
