"""calibration/benchmark_setup.py: the server settings and client protocols of the measured rows'
benchmarks, against the figures of aiconfigurator's generator and evaluation scripts."""
from __future__ import annotations

from calibration import benchmark_setup as bs
from simulator.catalog.engine import release_key


def test_benchmark_protocols_set_requests_and_warm_up() -> None:
    assert bs.protocol("vllm-bench", 16, 1000, False) == (1000, 0, None)
    assert bs.protocol("vllm-bench", 16, 1000, True) == (1000, 16, None)       # each client's first request
    assert bs.protocol("aic-eval", 16, 1000, False) == (12 * 16, 2 * 16, None)  # 10 per client after 2 of warm-up
    assert bs.protocol("aic-bench", 16, 1000, False) == (52 * 16, 2 * 16, None)  # AIPerf: 50 per client after 2
    # InferenceX: 10 per client, all timed (its warm-up ends first), lengths uniform on [0.8 L, L]
    assert bs.protocol("inferencex", 16, 1000, False) == (10 * 16, 0, 0.8)
    assert bs.protocol("vllm-bench", 16, 1000, False).range_ratio is None


def test_the_harness_a_rows_source_names() -> None:
    assert bs.harness_of("db-dump/2026-04-27; config_id=733; silicon_concurrency=128; workflow_run_id=758") == "inferencex"
    assert bs.harness_of("source_file=2026-04-06.csv; model=GPT-OSS-120B; silicon_concurrency=4") == "inferencex"
    assert bs.harness_of("source_file=/data/h100_sxm/vllm/0.12.0/Qwen_Qwen3-32B.csv; silicon_concurrency=8") \
        == "vllm-bench"
    assert bs.harness_of("") == "vllm-bench"


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
    assert release_key("0.14.1") == (0, 14, 1) and release_key("1.2.0rc6.post3") == (1, 2, 0)
    assert release_key("nightly-5b8c30d") is None and release_key("") is None
    assert release_key("0.12.0") < bs.VLLM_BUDGET_SINCE <= release_key("0.15.1")


def test_an_engine_without_chunked_prefill_gets_a_budget_its_prompt_fits() -> None:
    assert bs.prompt_budget("trtllm", 20000, 8) == {"batching": {"max_batched_tokens": 20008}}
    assert bs.prompt_budget("trtllm", 1000, 8) == {}       # its default 8192 already fits
    assert bs.prompt_budget("vllm", 20000, 8) == {}        # chunked prefill


def test_inferencex_launch_scripts_of_llama_70b() -> None:
    # benchmarks/70b_fp8_*.sh at c198b20e: vLLM's batch is the benchmark's concurrency (512 on B200)
    v = bs.inferencex_launch(bs.Benchmark("vllm", "llama-3.1-70b", "fp8", "h100-sxm", 8, 32, 1024, 1024))
    assert v == {"kv_dtype": "fp8", "overlap_host": True,
                 "batching": {"max_batch_size": 32, "max_batched_tokens": 8192}}
    assert bs.inferencex_launch(bs.Benchmark("vllm", "llama-3.1-70b", "fp8", "b200", 8, 32, 1024, 1024))["batching"]["max_batch_size"] == 512
    # TensorRT-LLM waits for prompts to batch only for 1k/1k below TP 8
    t = bs.inferencex_launch(bs.Benchmark("trtllm", "llama-3.1-70b", "fp8", "b200", 4, 16, 1024, 1024))
    assert t == {"kv_dtype": "fp8", "batching": {"max_batched_tokens": 16384,
                                                 "prefill_wait": {"steps": 20, "tokens_ratio": 0.9}}}
    assert "prefill_wait" not in bs.inferencex_launch(bs.Benchmark("trtllm", "llama-3.1-70b", "fp8", "b200", 8, 16, 1024, 1024))["batching"]
    assert "prefill_wait" not in bs.inferencex_launch(bs.Benchmark("trtllm", "llama-3.1-70b", "fp8", "b200", 4, 16, 1024, 8192))["batching"]
    assert bs.inferencex_launch(bs.Benchmark("vllm", "gpt-oss-120b", "nvfp4", "b200", 1, 4, 1024, 1024)) == {}   # not modelled
    # the FP4 scripts (B200 only, 70b_fp4_b200_*.sh) set the same keys as the FP8 ones
    assert bs.inferencex_launch(bs.Benchmark("vllm", "llama-3.1-70b", "nvfp4", "b200", 1, 4, 1024, 1024)) == \
        bs.inferencex_launch(bs.Benchmark("vllm", "llama-3.1-70b", "fp8", "b200", 1, 4, 1024, 1024))
    assert bs.inferencex_launch(bs.Benchmark("trtllm", "llama-3.1-70b", "nvfp4", "b200", 2, 4, 1024, 1024)) == t
    assert bs.inferencex_launch(bs.Benchmark("trtllm", "llama-3.1-70b", "nvfp4", "h200-sxm", 2, 4, 1024, 1024)) == {}


def test_inferencex_launch_scripts_of_deepseek_r1_on_sglang() -> None:
    # benchmarks/dsr1_*.sh, 2026-02-07..04-17: B200 / B300 poll for requests every 30 decode steps from 16
    # clients on, every 10 below
    run = bs.Benchmark("sglang", "deepseek-v3", "fp8", "b200", 8, 32, 1024, 1024)
    d = bs.inferencex_launch(run)
    assert d == {"kv_dtype": "fp8",
                 "batching": {"max_batch_size": 128, "max_batched_tokens": 32768, "recv_interval": 30},
                 "kv_cache": {"gpu_memory_utilization": 0.82, "prefix_caching": False}}
    assert bs.inferencex_launch(run._replace(concurrency=8))["batching"]["recv_interval"] == 10
    assert bs.inferencex_launch(run._replace(tp=4, isl=8192))["batching"] == {
        "max_batch_size": 32, "max_batched_tokens": 8192, "recv_interval": 10}
    assert bs.inferencex_launch(run._replace(weights="nvfp4", tp=4))["batching"]["max_batch_size"] == 256
    # H200's script does not poll and keeps the KV cache in the model's dtype
    h = bs.inferencex_launch(run._replace(gpu="h200-sxm"))
    assert "kv_dtype" not in h and "recv_interval" not in h["batching"] and h["batching"]["max_batch_size"] == 512
    assert bs.inferencex_launch(run._replace(gpu="gb200")) == {}                      # another (multi-node) script
    assert bs.inferencex_launch(run._replace(concurrency=256)) == {}   # beyond the script's sweep: another setup
    assert bs.inferencex_launch(run._replace(engine="trtllm")) == {}                  # not modelled


def test_measurement_day_from_the_source_or_a_dated_id() -> None:
    assert bs.measured_on("db-dump/2026-04-27; config_id=75; measured=2026-01-29T00:00:00.000Z", "x") == "2026-01-29"
    assert bs.measured_on("source_file=2026-03-25.csv", "2026_03_25_deepseek_r1_b200") == "2026-03-25"
    assert bs.measured_on("source_file=data/b200/vllm/0.12/x.csv", "dsr1_b200_c4") == ""


def test_inferencex_launch_scripts_of_deepseek_r1_on_trtllm() -> None:
    run = bs.Benchmark("trtllm", "deepseek-v3", "fp8", "b200", 8, 64, 1024, 1024, "2026-02-03")
    # fp8 KV; max_num_tokens = clients + isl + 64 rounded up to 64, at least 8,192 from 2026-01-21
    assert bs.inferencex_launch(run) == {"kv_dtype": "fp8", "kv_cache": {"prefix_caching": False},
                                         "batching": {"max_batch_size": 2048, "max_batched_tokens": 8192,
                                                      "prefill_wait": {"steps": 40, "tokens_ratio": 0.8}}}
    before = bs.inferencex_launch(run._replace(measured="2025-12-15", concurrency=8))["batching"]
    assert before == {"max_batch_size": 1152, "max_batched_tokens": 1152}   # (8 + 1024 + 64) -> 1152, no floor yet
    assert "prefill_wait" not in bs.inferencex_launch(run._replace(concurrency=32))["batching"]   # below 64 clients
    assert "prefill_wait" not in bs.inferencex_launch(run._replace(measured="2026-01-28"))["batching"]
    assert "prefill_wait" not in bs.inferencex_launch(run._replace(weights="nvfp4"))["batching"]
    assert bs.inferencex_launch(run._replace(isl=8192, concurrency=256))["batching"]["max_batched_tokens"] == 8512
    assert bs.inferencex_launch(run._replace(measured="")) == {}        # the day decides: unknown, no script
