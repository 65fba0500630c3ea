"""calibration/trtllm_bench.py: trtllm-bench's batch limits (tensorrt_llm/bench/build/tuning.py), by hand."""
from __future__ import annotations

import pytest

from calibration import offline_check
from calibration.trtllm_bench import BenchLimits, bench_limits, finetune, kv_cache_max_requests
from simulator.catalog.models import load_model
from simulator.perf.memory import param_count


def test_kv_cache_requests_by_hand():
    # Llama-3.1-8B fp8 weights, fp8 KV on one 80 GiB H100: 32 layers x 8 KV heads x 128 x 2 (K, V) x 1 byte
    per_token = 2 * 32 * 8 * 128 * 1 / 2**30
    engine = param_count(load_model("llama-3.1-8b")).total / 2**30
    want = (80 - engine) * 0.95 / (per_token * 22000)
    got = kv_cache_max_requests("llama-3.1-8b", "h100-sxm", 1, 1, "fp8", "fp8", 20000, 2000)
    assert got == pytest.approx(want, rel=1e-12) and 45 < got < 60
    # a bf16 cache holds half the requests; TP 8 spreads the weights, at least one KV head per GPU
    assert kv_cache_max_requests("llama-3.1-8b", "h100-sxm", 1, 1, "fp8", "bf16", 20000, 2000) == pytest.approx(got / 2)


@pytest.mark.parametrize("requests, isl, osl, pp, want", [
    (51.3, 20000, 2000, 1, (64, 2048)),          # small batch: at least 64, at least 2,048 tokens
    (1e6, 128, 128, 1, (4096, 8192)),            # capped at 4,096 requests; 4,096 x 2 tokens
    (1e6, 128, 128, 8, (512, 2048)),             # divided over 8 stages: 512 per micro-batch
    (700.0, 1000, 1000, 1, (768, 2048)),         # 128-steps between 256 and 1,024; 1,400 tokens -> 2,048
    (3000.0, 1000, 100, 1, (3072, 32768)),       # tokens capped at 32,768
    (1500.0, 2048, 2048, 1, (1536, 3072)),       # 256-steps above 1,024; 3,000 tokens -> 256-steps
])
def test_finetune_by_hand(requests, isl, osl, pp, want):
    assert finetune(requests, isl, osl, pp) == BenchLimits(*want)


def test_offline_trtllm_rows_run_with_the_bench_limits():
    row = {"model": "llama-3.1-8b", "gpu": "h100-sxm", "tp": 1, "isl": 20000, "osl": 2000, "requests": 10}
    lim = bench_limits("llama-3.1-8b", "h100-sxm", 1, 1, "fp8", "fp8", 20000, 2000)
    b = offline_check.scenario_of(row, "trtllm", "fp8")["deployment"]["batching"]
    # chunked prefill off: the budget rises to isl + max_batch_size (bench get_settings)
    assert b == {"max_batch_size": lim.max_batch_size, "max_batched_tokens": 20000 + lim.max_batch_size}
    assert "batching" not in offline_check.scenario_of({**row, "isl": 128}, "vllm", "fp8")["deployment"]
