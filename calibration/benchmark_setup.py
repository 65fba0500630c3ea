"""How the benchmark behind a measured row was run: the server settings it was launched with, and the
client protocol (how many requests, how many of them a warm-up). ``silicon_check`` builds each row's
scenario from these."""
from __future__ import annotations

from typing import Any

from simulator.catalog.engine import version_key
from simulator.catalog.engines import load_engine

#: The first vLLM version whose launch template in aiconfigurator's generator passes
#: ``--max-num-batched-tokens`` (``backend_templates/vllm/cli_args.0.14.1.j2``; the 0.12.0 one does not).
VLLM_BUDGET_SINCE = (0, 14, 1)

#: Benchmark protocols, as requests per client sent in all and left out as warm-up (None: a fixed
#: count, ``--prompts``). In ai-dynamo/aiconfigurator: ``aic-eval`` is its evaluation pipeline
#: (``eval/benchmarks/genai_perf_runner.py``: ``--request-count`` 10 x concurrency after
#: ``--warmup-request-count`` 2 x concurrency; its ``bench_serving`` runner also sends 10 per client);
#: ``aic-bench`` the benchmark script its generator writes (``backend_templates/benchmark/bench_run.sh.j2``:
#: AIPerf ``--num-requests`` 50 x concurrency, ``--warmup-request-count`` 2 x concurrency).
HARNESSES: dict[str, tuple[int, int] | None] = {"vllm-bench": None, "aic-eval": (12, 2), "aic-bench": (52, 2)}


def protocol(harness: str, concurrency: int, prompts: int, warmup: bool) -> tuple[int, int]:
    """Requests to simulate at ``concurrency`` clients and how many of the first (by arrival) to leave
    out: ``harness``'s counts, or ``prompts`` with each client's first request left out if ``warmup``."""
    spec = HARNESSES[harness]
    if spec is None:
        return prompts, concurrency if warmup else 0
    return spec[0] * concurrency, spec[1] * concurrency


def prompt_budget(engine: str, isl: int, running: int) -> dict[str, Any]:
    """The deployment keys a benchmark of ``isl``-token prompts must have been launched with on
    ``engine``: without chunked prefill a prompt fits one step beside up to ``running`` decodes only
    if the token budget allows it (empty when the engine's default budget or chunking suffices)."""
    sched = load_engine(engine).scheduler
    if sched is None or sched.chunked_prefill is not False or isl + running <= (sched.max_num_batched_tokens or 0):
        return {}
    return {"batching": {"max_batched_tokens": isl + running}}


def release(version: str) -> tuple[int, ...] | None:
    """A version string's leading release numbers (``"0.14.1"`` -> (0, 14, 1), as the engine catalog orders
    versions); None for a nightly or none."""
    return version_key(version) if version[:1].isdigit() else None


def generator_launch(engine: str, version: str, concurrency: int, isl: int) -> dict[str, Any]:
    """``deployment.batching`` as aiconfigurator's generator launches ``engine`` (at ``version``) for a
    benchmark of ``concurrency`` clients and ``isl``-token prompts (``generator/rule_plugin/benchmark/
    <engine>.rule`` and ``config/backend_config_mapping.yaml``, ai-dynamo/aiconfigurator): the server's
    batch is the benchmark's; a step takes at most batch + isl + 1500 tokens (TensorRT-LLM
    ``max_num_tokens``; vLLM ``--max-num-batched-tokens`` where its template passes it); SGLang gets
    ``--max-prefill-tokens`` isl + 1500 beside the running decodes, and ``--enable-mixed-chunk``."""
    b: dict[str, Any] = {"max_batch_size": concurrency}
    budget = concurrency + isl + 1500
    v = release(version)
    if engine == "sglang":
        b.update(max_batched_tokens=budget, mixed_batches=True)
    elif engine == "trtllm" or (engine == "vllm" and (v is None or v >= VLLM_BUDGET_SINCE)):
        b["max_batched_tokens"] = budget
    return {"batching": b}
