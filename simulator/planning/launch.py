"""Launch and benchmark commands for a chosen plan: ``vllm serve``, SGLang's
``python -m sglang.launch_server``, ``trtllm-serve`` with its extra-options YAML, and the
``vllm bench serve`` / ``aiperf profile`` runs that check the plan on real hardware.

Flag names follow each engine's own argument definitions, recorded with version and source in
``data/engine_flags.yaml``. Commands are argument lists (one replica each); :mod:`.emit` writes them.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..catalog.models import catalog_entry
from ..config.scenario import PrefillWait, Scenario, Speculative
from ..errors import InputError

FLAGS_FILE = Path(__file__).resolve().parent / "data" / "engine_flags.yaml"
#: Placeholder written where a speculative head's weights must be named by the user.
DRAFT_HEAD = "<DRAFT_HEAD_PATH>"


@dataclass(frozen=True)
class LaunchPlan:
    """One replica of the chosen plan, in engine-neutral terms."""

    model_id: str                 # Hugging Face id (or local path) the engine loads
    gpu: str
    tp: int
    pp: int
    replicas: int
    weight_dtype: str
    kv_dtype: str
    max_batch_size: int
    max_batched_tokens: int
    memory_fraction: float        # share of GPU memory the engine takes
    chunked_prefill: bool
    prefix_caching: bool
    speculative: Speculative | None = None
    draft_id: str | None = None   # draft model's id (method draft_model)
    expert_parallel: int | None = None
    attention_dp: bool = False
    port: int = 8000
    mixed_batches: bool | None = None     # prefill chunks beside decodes (None: the engine's rule)
    prefill_wait: PrefillWait | None = None   # batch waiting (TensorRT-LLM only)
    recv_interval: int | None = None          # decode steps between polls for new requests (SGLang only)


@dataclass(frozen=True)
class BenchSpec:
    """The load that checks one replica of the plan."""

    isl_mean: int
    isl_std: int
    osl_mean: int
    osl_std: int
    rate: float                   # requests per second sent to one replica
    num_prompts: int
    ttft_ms: float | None
    tpot_ms: float | None


def model_id(name: str) -> str:
    """The Hugging Face id of a catalog model; a config.json path gives its directory."""
    p = Path(name)
    if p.suffix == ".json" or p.is_dir():
        return str(p.parent if p.suffix == ".json" else p)
    return str(catalog_entry(name)["hf_id"])


def launch_plan(scenario: Scenario, row: dict[str, Any], port: int = 8000) -> LaunchPlan:
    """The :class:`LaunchPlan` of a planner row (``plans[i]``) on the planned scenario."""
    d, dep = scenario.deployment, row["deployment"]
    if dep.get("kind", "aggregated") != "aggregated":
        raise InputError("--emit", dep.get("kind"), "launch settings for aggregated plans only")
    spec = d.speculative
    moe = d.moe
    return LaunchPlan(
        model_id=model_id(scenario.model), gpu=dep["gpu"], tp=dep["tp"], pp=dep["pp"], replicas=row["replicas"],
        weight_dtype=dep["weight_dtype"], kv_dtype=d.kv_dtype, max_batch_size=dep["max_batch_size"],
        max_batched_tokens=dep["max_batched_tokens"], memory_fraction=d.kv_cache.gpu_memory_utilization,
        chunked_prefill=d.batching.chunked_prefill, prefix_caching=d.kv_cache.prefix_caching, speculative=spec,
        draft_id=model_id(spec.draft_model) if spec is not None and spec.draft_model else None,
        expert_parallel=moe.expert_parallel if moe is not None else None,
        attention_dp=moe is not None and moe.attention == "dp", port=port,
        mixed_batches=d.batching.mixed_batches, prefill_wait=d.batching.prefill_wait,
        recv_interval=d.batching.recv_interval)


def _no_flag(lp: LaunchPlan, engine: str, mixes: bool | None) -> None:
    """Refuse batching settings ``engine`` has no flag for: ``mixes`` says whether its steps always put
    prefill chunks beside decodes (None: a flag chooses); only TensorRT-LLM waits for prompts to batch, and
    only SGLang polls for new requests less often than every step."""
    if mixes is not None and lp.mixed_batches is not None and lp.mixed_batches != mixes:
        raise InputError("deployment.batching.mixed_batches", lp.mixed_batches,
                         f"{engine} has no flag for it: leave it unset or {str(mixes).lower()}")
    if lp.prefill_wait is not None and engine != "TensorRT-LLM":
        raise InputError("deployment.batching.prefill_wait", lp.prefill_wait.model_dump(),
                         f"{engine} has no batch waiting (TensorRT-LLM's batch_wait_*): leave it unset")
    if lp.recv_interval not in (None, 1) and engine != "SGLang":
        raise InputError("deployment.batching.recv_interval", lp.recv_interval,
                         f"{engine} takes new requests in at every step (SGLang's --scheduler-recv-interval "
                         "only): leave it unset or 1")


def _quantized(lp: LaunchPlan) -> bool:
    return lp.weight_dtype == "fp8"


def vllm_serve(lp: LaunchPlan) -> list[str]:
    """``vllm serve`` for one replica."""
    _no_flag(lp, "vLLM", True)
    cmd = ["vllm", "serve", lp.model_id, "--tensor-parallel-size", str(lp.tp),
           "--pipeline-parallel-size", str(lp.pp), "--max-num-seqs", str(lp.max_batch_size),
           "--max-num-batched-tokens", str(lp.max_batched_tokens),
           "--gpu-memory-utilization", f"{lp.memory_fraction:g}",
           "--kv-cache-dtype", "fp8" if lp.kv_dtype == "fp8" else "auto",
           "--enable-chunked-prefill" if lp.chunked_prefill else "--no-enable-chunked-prefill",
           "--enable-prefix-caching" if lp.prefix_caching else "--no-enable-prefix-caching"]
    if _quantized(lp):
        cmd += ["--quantization", "fp8"]
    if lp.expert_parallel:
        cmd += ["--enable-expert-parallel"]
    s = lp.speculative
    if s is not None:
        conf: dict[str, Any] = {"num_speculative_tokens": s.k}
        if s.method == "ngram":
            conf |= {"method": "ngram", "prompt_lookup_max": 4}
        elif s.method == "draft_model":
            conf |= {"model": lp.draft_id}
        else:
            conf |= {"method": s.method, "model": DRAFT_HEAD}
        cmd += ["--speculative-config", json.dumps(conf, separators=(",", ":"))]
    return cmd + ["--port", str(lp.port)]


_SGLANG_SPEC = {"eagle": "EAGLE", "ngram": "NGRAM", "draft_model": "STANDALONE"}


def sglang_launch(lp: LaunchPlan) -> list[str]:
    """SGLang's ``python -m sglang.launch_server`` for one replica (medusa: not offered by SGLang)."""
    _no_flag(lp, "SGLang", None)   # --enable-mixed-chunk
    cmd = ["python", "-m", "sglang.launch_server", "--model-path", lp.model_id, "--tp-size", str(lp.tp),
           "--pp-size", str(lp.pp), "--max-running-requests", str(lp.max_batch_size),
           "--chunked-prefill-size", str(lp.max_batched_tokens) if lp.chunked_prefill else "-1",
           "--max-prefill-tokens", str(lp.max_batched_tokens), "--mem-fraction-static", f"{lp.memory_fraction:g}",
           "--kv-cache-dtype", "fp8_e4m3" if lp.kv_dtype == "fp8" else "auto"]
    if _quantized(lp):
        cmd += ["--quantization", "fp8"]
    if not lp.prefix_caching:
        cmd += ["--disable-radix-cache"]
    if lp.mixed_batches:
        cmd += ["--enable-mixed-chunk"]
    if lp.recv_interval not in (None, 1):
        cmd += ["--scheduler-recv-interval", str(lp.recv_interval)]
    if lp.expert_parallel:
        cmd += ["--ep-size", str(lp.expert_parallel)]
    if lp.attention_dp:
        cmd += ["--enable-dp-attention", "--dp-size", str(lp.tp)]
    s = lp.speculative
    if s is not None:
        if s.method not in _SGLANG_SPEC:
            raise InputError("deployment.speculative.method", s.method, "SGLang: eagle, ngram or draft_model")
        cmd += ["--speculative-algorithm", _SGLANG_SPEC[s.method], "--speculative-num-steps", str(s.k),
                "--speculative-eagle-topk", "1", "--speculative-num-draft-tokens", str(s.k + 1)]
        if s.method != "ngram":
            cmd += ["--speculative-draft-model-path", lp.draft_id or DRAFT_HEAD]
    return cmd + ["--port", str(lp.port)]


_TRT_SPEC = {"eagle": "Eagle", "ngram": "NGram", "draft_model": "DraftTarget", "medusa": "Medusa"}


def trtllm_options(lp: LaunchPlan) -> dict[str, Any]:
    """The ``--extra_llm_api_options`` YAML of ``trtllm-serve`` (PyTorch backend)."""
    _no_flag(lp, "TensorRT-LLM", True)
    opts: dict[str, Any] = {
        "tensor_parallel_size": lp.tp, "pipeline_parallel_size": lp.pp, "max_batch_size": lp.max_batch_size,
        "max_num_tokens": lp.max_batched_tokens, "enable_chunked_prefill": lp.chunked_prefill,
        "kv_cache_config": {"free_gpu_memory_fraction": lp.memory_fraction,
                            "dtype": "fp8" if lp.kv_dtype == "fp8" else "auto",
                            "enable_block_reuse": lp.prefix_caching}}
    if lp.expert_parallel:
        opts["moe_expert_parallel_size"] = lp.expert_parallel
    if lp.attention_dp:
        opts["enable_attention_dp"] = True
    if lp.prefill_wait is not None:
        opts["batch_wait_timeout_iters"] = lp.prefill_wait.steps
        opts["batch_wait_max_tokens_ratio"] = lp.prefill_wait.tokens_ratio
    s = lp.speculative
    if s is not None:
        spec: dict[str, Any] = {"decoding_type": _TRT_SPEC[s.method], "max_draft_len": s.k}
        if s.method == "ngram":
            spec["max_matching_ngram_size"] = 4
        else:
            spec["speculative_model_dir"] = lp.draft_id or DRAFT_HEAD
        opts["speculative_config"] = spec
    return opts


def trtllm_serve(lp: LaunchPlan, options_file: str = "trtllm_extra_options.yaml") -> list[str]:
    """``trtllm-serve`` for one replica; fp8 weights need an fp8 checkpoint (TensorRT-LLM loads it as is)."""
    return ["trtllm-serve", lp.model_id, "--backend", "pytorch", "--tp_size", str(lp.tp), "--pp_size", str(lp.pp),
            *(["--ep_size", str(lp.expert_parallel)] if lp.expert_parallel else []),
            "--max_batch_size", str(lp.max_batch_size), "--max_num_tokens", str(lp.max_batched_tokens),
            "--kv_cache_free_gpu_memory_fraction", f"{lp.memory_fraction:g}",
            "--extra_llm_api_options", options_file, "--port", str(lp.port)]


def bench_spec(scenario: Scenario, row: dict[str, Any], isl: tuple[float, float], osl: tuple[float, float],
               duration_s: float = 600.0) -> BenchSpec:
    """The check of one replica: the planned lengths (mean, std), its operating rate, ``duration_s`` of load."""
    rate = row["operating_rate_per_replica"]
    slo = scenario.slo
    return BenchSpec(round(isl[0]), round(isl[1]), round(osl[0]), round(osl[1]), rate,
                     max(200, math.ceil(rate * duration_s)),
                     None if slo.ttft_s is None else slo.ttft_s * 1e3, None if slo.tpot_s is None else slo.tpot_s * 1e3)


def vllm_bench(lp: LaunchPlan, b: BenchSpec) -> list[str]:
    """``vllm bench serve`` against one replica (any OpenAI-compatible server: the three engines)."""
    cmd = ["vllm", "bench", "serve", "--backend", "openai", "--base-url", f"http://localhost:{lp.port}",
           "--endpoint", "/v1/completions", "--model", lp.model_id, "--dataset-name", "random",
           "--random-input-len", str(b.isl_mean), "--random-output-len", str(b.osl_mean),
           "--random-range-ratio", f"{_range_ratio(b):g}", "--num-prompts", str(b.num_prompts),
           "--request-rate", f"{b.rate:.4g}", "--ignore-eos", "--seed", "0",
           "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99"]
    goodput = [f"{k}:{v:g}" for k, v in (("ttft", b.ttft_ms), ("tpot", b.tpot_ms)) if v is not None]
    if goodput:
        cmd += ["--goodput", *goodput]
    return cmd + ["--save-result", "--result-filename", "vllm_bench_result.json"]


def _range_ratio(b: BenchSpec) -> float:
    """vLLM's random dataset draws lengths uniformly within ±ratio of the mean; a uniform of that
    width has the planned standard deviation when ratio = std * sqrt(3) / mean (capped below 1)."""
    widest = max(b.isl_std / max(b.isl_mean, 1), b.osl_std / max(b.osl_mean, 1)) * math.sqrt(3)
    return round(min(widest, 0.99), 3)


def aiperf(lp: LaunchPlan, b: BenchSpec) -> list[str]:
    """``aiperf profile`` against one replica."""
    return ["aiperf", "profile", "--model", lp.model_id, "--tokenizer", lp.model_id,
            "--url", f"localhost:{lp.port}", "--endpoint-type", "completions", "--streaming",
            "--synthetic-input-tokens-mean", str(b.isl_mean), "--synthetic-input-tokens-stddev", str(b.isl_std),
            "--output-tokens-mean", str(b.osl_mean), "--output-tokens-stddev", str(b.osl_std),
            "--extra-inputs", "ignore_eos:true", "--request-rate", f"{b.rate:.4g}",
            "--request-count", str(b.num_prompts), "--random-seed", "0", "--profile-export-file", "aiperf_profile.json"]


def recorded_flags() -> dict[str, Any]:
    """The recorded valid flags per engine and tool (``data/engine_flags.yaml``)."""
    return yaml.safe_load(FLAGS_FILE.read_text())
