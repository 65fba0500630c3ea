"""How the benchmark behind a measured row was run: the server settings it was launched with, and the
client protocol (how many requests, how many of them a warm-up). ``silicon_check`` builds each row's
scenario from these."""
from __future__ import annotations

import re
from typing import Any, NamedTuple

from simulator.catalog.engine import release_key
from simulator.catalog.engines import load_engine

#: The first vLLM version whose launch template in aiconfigurator's generator passes
#: ``--max-num-batched-tokens`` (``backend_templates/vllm/cli_args.0.14.1.j2``; the 0.12.0 one does not).
VLLM_BUDGET_SINCE = (0, 14, 1)

#: InferenceX's ``RANDOM_RANGE_RATIO`` (``.github/workflows/benchmark-tmpl.yml``, 0.8 in every single-node
#: sweep from 2025-10 on): its client (``utils/bench_serving/benchmark_serving.py``,
#: ``sample_random_requests``) draws each prompt and output length uniformly from [int(0.8 L), L].
INFERENCEX_RANGE_RATIO = 0.8

#: Benchmark protocols, as requests per client sent in all and left out as warm-up, and the range ratio
#: of their lengths (None: exactly the row's); None for the whole entry: a fixed count, ``--prompts``.
#: In ai-dynamo/aiconfigurator: ``aic-eval`` is its evaluation pipeline
#: (``eval/benchmarks/genai_perf_runner.py``: ``--request-count`` 10 x concurrency after
#: ``--warmup-request-count`` 2 x concurrency; its ``bench_serving`` runner also sends 10 per client);
#: ``aic-bench`` the benchmark script its generator writes (``backend_templates/benchmark/bench_run.sh.j2``:
#: AIPerf ``--num-requests`` 50 x concurrency, ``--warmup-request-count`` 2 x concurrency).
#: ``inferencex``: the InferenceX benchmark (SemiAnalysisAI/InferenceX, ``benchmarks/benchmark_lib.sh``
#: ``run_benchmark_serving``): ``--num-prompts`` 10 x concurrency, all timed; its warm-up (2 x
#: concurrency, since 2026-01-21) ends before the timed run starts, so it leaves nothing running.
HARNESSES: dict[str, tuple[int, int, float | None] | None] = {
    "vllm-bench": None, "aic-eval": (12, 2, None), "aic-bench": (52, 2, None),
    "inferencex": (10, 0, INFERENCEX_RANGE_RATIO)}

#: A row of the sample that comes from the InferenceX results database: a weekly dump
#: (``db-dump/<date>``, with its ``config_id`` and ``workflow_run_id``) or a dated export of it.
_INFERENCEX_SOURCE = re.compile(r"(db-dump/|source_file=\d{4}-\d{2}-\d{2}\.csv)")


class Protocol(NamedTuple):
    """How a benchmark's client ran: ``requests`` sent from a start with nothing running, the first
    ``skip`` (by arrival) left out of the statistics, and each length drawn uniformly from
    [int(``range_ratio`` x L), L] (None: every request exactly L)."""

    requests: int
    skip: int
    range_ratio: float | None = None


#: The day a row was measured: ``measured=<date>`` in its source, else a dated row id (``2026_03_25_...``).
_MEASURED = re.compile(r"measured=(\d{4}-\d{2}-\d{2})")
_DATED_ID = re.compile(r"^(\d{4})_(\d{2})_(\d{2})_")


def measured_on(source: str, row_id: str) -> str:
    """The day (YYYY-MM-DD) a sample row was measured, as its source or id says; "" if neither does."""
    m = _MEASURED.search(source)
    if m:
        return m.group(1)
    d = _DATED_ID.match(row_id)
    return "-".join(d.groups()) if d else ""


def harness_of(source: str) -> str:
    """The benchmark harness a sample row's ``silicon_data_source`` names: ``inferencex`` for the
    InferenceX results database, else ``vllm-bench`` (the rows do not say)."""
    return "inferencex" if _INFERENCEX_SOURCE.search(source) else "vllm-bench"


def protocol(harness: str, concurrency: int, prompts: int, warmup: bool) -> Protocol:
    """The client protocol of ``harness`` at ``concurrency`` clients: its counts, or ``prompts`` with each
    client's first request left out if ``warmup`` (``vllm-bench``)."""
    spec = HARNESSES[harness]
    if spec is None:
        return Protocol(prompts, concurrency if warmup else 0)
    sent, skipped, ratio = spec
    return Protocol(sent * concurrency, skipped * concurrency, ratio)


def prompt_budget(engine: str, isl: int, running: int) -> dict[str, Any]:
    """The deployment keys a benchmark of ``isl``-token prompts must have been launched with on
    ``engine``: without chunked prefill a prompt fits one step beside up to ``running`` decodes only
    if the token budget allows it (empty when the engine's default budget or chunking suffices)."""
    sched = load_engine(engine).scheduler
    if sched is None or sched.chunked_prefill is not False or isl + running <= (sched.max_num_batched_tokens or 0):
        return {}
    return {"batching": {"max_batched_tokens": isl + running}}


def generator_launch(engine: str, version: str, concurrency: int, isl: int) -> dict[str, Any]:
    """``deployment.batching`` as aiconfigurator's generator launches ``engine`` (at ``version``) for a
    benchmark of ``concurrency`` clients and ``isl``-token prompts (``generator/rule_plugin/benchmark/
    <engine>.rule`` and ``config/backend_config_mapping.yaml``, ai-dynamo/aiconfigurator): the server's
    batch is the benchmark's; a step takes at most batch + isl + 1500 tokens (TensorRT-LLM
    ``max_num_tokens``; vLLM ``--max-num-batched-tokens`` where its template passes it); SGLang gets
    ``--max-prefill-tokens`` isl + 1500 beside the running decodes, and ``--enable-mixed-chunk``."""
    b: dict[str, Any] = {"max_batch_size": concurrency}
    budget = concurrency + isl + 1500
    v = release_key(version)
    if engine == "sglang":
        b.update(max_batched_tokens=budget, mixed_batches=True)
    elif engine == "trtllm" or (engine == "vllm" and (v is None or v >= VLLM_BUDGET_SINCE)):
        b["max_batched_tokens"] = budget
    return {"batching": b}


class Benchmark(NamedTuple):
    """What a measured row ran: the engine, servesim's model label, the weights' format, the GPU, the
    tensor-parallel size, the benchmark's clients and its prompt and output lengths."""

    engine: str
    model: str
    weights: str
    gpu: str
    tp: int
    concurrency: int
    isl: int
    osl: int
    measured: str = ""   # YYYY-MM-DD, "" where the row does not say


def inferencex_launch(b: Benchmark) -> dict[str, Any]:
    """``deployment`` keys of InferenceX's launch script for a row, where servesim knows that script
    (Llama-70B FP8 and FP4 on vLLM and TensorRT-LLM, DeepSeek-R1 on SGLang and TensorRT-LLM; empty otherwise:
    the engine's defaults)."""
    if b.model == INFERENCEX_70B and (b.weights == "fp8" or (b.weights == "nvfp4" and b.gpu == "b200")):
        return _llama_70b(b)
    if b.model == INFERENCEX_DSR1 and b.engine == "sglang":
        return _deepseek_r1_sglang(b)
    if b.model == INFERENCEX_DSR1 and b.engine == "trtllm":
        return _deepseek_r1_trtllm(b)
    return {}


#: Launch settings of InferenceX's single-node scripts for Llama-3.3-70B FP8 and FP4 (SemiAnalysisAI/InferenceX
#: at c198b20e, the last commit before "remove llama 70b (#149)", 2025-10-29; its rows in the sample were
#: measured that day): vLLM ``benchmarks/70b_fp8_{h100,h200}_slurm.sh`` / ``70b_{fp8,fp4}_b200_docker.sh``
#: (``kv-cache-dtype: fp8``, ``async-scheduling: true``, ``max-num-batched-tokens: 8192``,
#: ``--max-num-seqs`` the benchmark's concurrency, 512 on B200) and TensorRT-LLM
#: ``70b_{fp8,fp4}_*_trt_*.sh`` (``--max_num_tokens 16384``, KV ``dtype: fp8``; for 1k/1k below TP 8
#: ``batch_wait_max_tokens_ratio: 0.9`` and ``batch_wait_timeout_iters: 20``). The FP4 scripts (B200
#: only) set the same keys as the FP8 ones.
INFERENCEX_70B = "llama-3.1-70b"


def _llama_70b(b: Benchmark) -> dict[str, Any]:
    if b.engine == "vllm":
        return {"kv_dtype": "fp8", "overlap_host": True,
                "batching": {"max_batch_size": 512 if b.gpu == "b200" else b.concurrency, "max_batched_tokens": 8192}}
    if b.engine == "trtllm":
        batching: dict[str, Any] = {"max_batched_tokens": 16384}
        if b.isl == b.osl == 1024 and b.tp < 8:
            batching["prefill_wait"] = {"steps": 20, "tokens_ratio": 0.9}
        return {"kv_dtype": "fp8", "batching": batching}
    return {}


#: Launch settings of InferenceX's SGLang scripts for DeepSeek-R1 (SemiAnalysisAI/InferenceX,
#: ``benchmarks/[single_node/]dsr1_{fp8_b200,fp8_b300,fp4_b200,fp8_h200}.sh``; the same keys from 04b564b3,
#: 2026-02-07, through dd9c285b, 2026-04-17, the window its SGLang rows in the sample were measured in):
#: on B200 / B300 ``--scheduler-recv-interval`` 30 from 16 clients on, else 10 (10 at TP 4 with FP8),
#: ``--kv-cache-dtype fp8_e4m3`` and ``--disable-radix-cache``; FP8 at TP 8 ``--max-running-requests``
#: 128, ``--chunked-prefill-size`` 32768, ``--mem-fraction-static`` 0.82, at TP 4 32 / 8192 / 0.95; FP4
#: 256 / 16384 / 0.85. On H200 (FP8): no polling interval, the KV cache in the model's dtype, 512
#: running requests for 1k/1k and 256 otherwise, 32768-token chunks, 0.82. The scripts set
#: ``--max-running-requests`` to the highest concurrency of their sweep; a row with more clients came from
#: another configuration, and gets the engine's defaults.
INFERENCEX_DSR1 = "deepseek-v3"


def _deepseek_r1_sglang(b: Benchmark) -> dict[str, Any]:
    if b.gpu == "h200-sxm" and b.weights == "fp8":
        running = 512 if b.isl == b.osl == 1024 else 256
        out: dict[str, Any] = {"batching": {"max_batch_size": running, "max_batched_tokens": 32768},
                               "kv_cache": {"gpu_memory_utilization": 0.82, "prefix_caching": False}}
    elif b.gpu in ("b200", "b300") and b.weights in ("fp8", "nvfp4"):
        poll = 30 if b.concurrency >= 16 else 10
        if b.weights == "nvfp4":
            running, tokens, memory = 256, 16384, 0.85
        elif b.tp >= 8:
            running, tokens, memory = 128, 32768, 0.82
        else:
            running, tokens, memory, poll = 32, 8192, 0.95, 10
        out = {"kv_dtype": "fp8",
               "batching": {"max_batch_size": running, "max_batched_tokens": tokens, "recv_interval": poll},
               "kv_cache": {"gpu_memory_utilization": memory, "prefix_caching": False}}
    else:
        return {}
    return out if b.concurrency <= out["batching"]["max_batch_size"] else {}


#: InferenceX's TensorRT-LLM scripts for DeepSeek-R1 (SemiAnalysisAI/InferenceX,
#: ``benchmarks/[single_node/]dsr1_{fp8_b200,fp4_b200,fp8_h200}_trt[_slurm].sh``): the KV cache in fp8 (from
#: 2025-09-18 on); ``--max_num_tokens`` the clients + isl + 64 rounded up to 64 tokens, at least 8,192 from
#: 2026-01-21 (64af5a77, "Adding evals after throughput benchmarks"); and for FP8 on B200 at 1k/1k from 64
#: clients batch waiting, ``batch_wait_timeout_iters: 40``, ``batch_wait_max_tokens_ratio: 0.8``, from
#: 2026-01-29 (ec7bafaa, "dsr1 fp8 b200 agg update"; that day's rows are its run).
TRT_DSR1_FLOOR_SINCE, TRT_DSR1_WAIT_SINCE = "2026-01-21", "2026-01-29"


def _deepseek_r1_trtllm(b: Benchmark) -> dict[str, Any]:
    if b.gpu not in ("b200", "h200-sxm") or b.weights not in ("fp8", "nvfp4") or not b.measured:
        return {}
    tokens = -(-(b.concurrency + b.isl + 64) // 64) * 64
    if b.measured >= TRT_DSR1_FLOOR_SINCE:
        tokens = max(tokens, 8192)
    # trtllm-serve's default batch of 2,048 sequences, bounded by the step's tokens (one per decoding sequence)
    batching: dict[str, Any] = {"max_batch_size": min(2048, tokens), "max_batched_tokens": tokens}
    if (b.gpu, b.weights, b.isl, b.osl) == ("b200", "fp8", 1024, 1024) and b.concurrency >= 64 \
            and b.measured >= TRT_DSR1_WAIT_SINCE:
        batching["prefill_wait"] = {"steps": 40, "tokens_ratio": 0.8}
    return {"kv_dtype": "fp8", "batching": batching, "kv_cache": {"prefix_caching": False}}
