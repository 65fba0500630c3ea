"""calibration/benchmark_setup.py: the server settings and client protocols of the measured rows'
benchmarks, against the figures of aiconfigurator's generator and evaluation scripts."""
from __future__ import annotations

from calibration import benchmark_setup as bs


def test_benchmark_protocols_set_requests_and_warm_up() -> None:
    assert bs.protocol("vllm-bench", 16, 1000, False) == (1000, 0)
    assert bs.protocol("vllm-bench", 16, 1000, True) == (1000, 16)       # each client's first request
    assert bs.protocol("aic-eval", 16, 1000, False) == (12 * 16, 2 * 16)  # 10 per client after 2 of warm-up
    assert bs.protocol("aic-bench", 16, 1000, False) == (52 * 16, 2 * 16)  # AIPerf: 50 per client after 2


def test_the_generators_launch_settings() -> None:
    # rule_plugin/benchmark/*.rule: batch = the benchmark's, batch + isl + 1500 tokens a step
    assert bs.generator_launch("trtllm", "1.0.0rc3", 8, 1024) == \
        {"batching": {"max_batch_size": 8, "max_batched_tokens": 2532}}
    assert bs.generator_launch("vllm", "0.19.0", 32, 4096) == \
        {"batching": {"max_batch_size": 32, "max_batched_tokens": 32 + 4096 + 1500}}
    assert bs.generator_launch("vllm", "", 4, 1000)["batching"]["max_batched_tokens"] == 4 + 1000 + 1500
    assert bs.generator_launch("vllm", "0.12.0", 4, 1000) == {"batching": {"max_batch_size": 4}}  # template: no budget
    assert bs.generator_launch("sglang", "0.5.9", 16, 2048) == \
        {"batching": {"max_batch_size": 16, "max_batched_tokens": 16 + 2048 + 1500, "mixed_batches": True}}


def test_release_numbers() -> None:
    assert bs.release("0.14.1") == (0, 14, 1) and bs.release("1.2.0rc6.post3") == (1, 2, 0)
    assert bs.release("nightly-5b8c30d") is None and bs.release("") is None
    assert bs.release("0.12.0") < bs.VLLM_BUDGET_SINCE <= bs.release("0.15.1")


def test_an_engine_without_chunked_prefill_gets_a_budget_its_prompt_fits() -> None:
    assert bs.prompt_budget("trtllm", 20000, 8) == {"batching": {"max_batched_tokens": 20008}}
    assert bs.prompt_budget("trtllm", 1000, 8) == {}       # its default 8192 already fits
    assert bs.prompt_budget("vllm", 20000, 8) == {}        # chunked prefill
