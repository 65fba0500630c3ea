"""Pydantic models of a scenario file: what is served, on what, under which traffic and SLOs.

Every serving optimisation is a key whose default leaves it off (see docs/guide/features.md).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..workload.config import WorkloadConfig
from ..schema import StrictModel


#: Most GPUs one parallel dimension (tp, pp, cp, expert parallelism) may span: beyond any system built.
MAX_GPUS = 65_536


#: Router policies (engine/router.py implements each).
RouterPolicy = Literal["round_robin", "least_outstanding", "least_kv", "random", "prefix_aware"]


class _Strict(StrictModel):
    """Unknown keys are errors; floats finite; no booleans for numbers."""


class PrefillWait(_Strict):
    """Continuous batching: hold new prompts back while decodes run, until the step would carry
    ``tokens_ratio`` x ``max_batched_tokens`` tokens or ``steps`` steps have passed (TensorRT-LLM's
    ``batch_wait_max_tokens_ratio`` and ``batch_wait_timeout_iters``; off by default there)."""

    steps: int = Field(ge=1, le=10**6, description="steps new prompts wait at most")
    tokens_ratio: float = Field(gt=0, le=1, description="share of max_batched_tokens (decodes and waiting "
                                                          "prompts) that ends the wait early")


class Batching(_Strict):
    """How a replica forms batches."""

    policy: Literal["static", "dynamic", "continuous"] = Field(
        "continuous", description="static: fixed batches run to completion; dynamic: static with a fill timeout; "
                                  "continuous: iteration-level batching")
    max_batch_size: int = Field(256, ge=1, le=2**20, description="requests in a batch")
    max_batched_tokens: int = Field(8192, ge=1, le=2**31, description="tokens per step (continuous batching)")
    chunked_prefill: bool = Field(True, description="split long prompts into chunks under max_batched_tokens "
                                                    "(continuous batching)")
    timeout_s: float = Field(0.05, ge=0, description="dynamic: seconds a batch waits to fill")
    mixed_batches: bool | None = Field(
        None, description="continuous batching: true puts prefill chunks and decodes in one step (vLLM, "
                          "TensorRT-LLM, SGLang with --enable-mixed-chunk), false runs them in separate steps, "
                          "prefills first (SGLang's default); unset: the engine's rule")
    prefill_wait: PrefillWait | None = Field(
        None, description="continuous batching: hold new prompts back while decodes run, to batch more of them "
                          "(TensorRT-LLM's batch waiting); unset: none")
    recv_interval: int | None = Field(
        None, ge=1, le=10**6, description="continuous batching: the scheduler takes new requests in only every N "
                                          "decode steps, and after each step with prefill (SGLang's "
                                          "--scheduler-recv-interval); unset or 1: at every step")

    @model_validator(mode="after")
    def _continuous_only(self) -> "Batching":
        for key in ("prefill_wait", "recv_interval"):
            if getattr(self, key) is not None and self.policy != "continuous":
                raise ValueError(f"{key} applies to continuous batching only (policy is {self.policy})")
        return self


class KVCache(_Strict):
    """Paged KV-cache memory of a replica."""

    block_size: int = Field(16, ge=1, le=2**20, description="tokens per block")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="share of GPU memory the engine takes")
    preemption: Literal["recompute", "swap"] = Field(
        "recompute", description="when KV blocks run out, a preempted request's cache is recomputed or swapped to host")
    num_blocks: int | None = Field(None, ge=1, le=2**40, description="override: blocks per replica (else from memory)")
    prefix_caching: bool = Field(False, description="share full KV blocks between requests with equal prefixes")


class Pool(_Strict):
    """One pool of a disaggregated deployment; unset keys inherit the deployment's."""

    gpu: str | None = Field(None, description="GPU profile of this pool (unset: the deployment's)")
    tp: int | None = Field(None, ge=1, le=MAX_GPUS, description="tensor-parallel GPUs per replica (unset: the deployment's)")
    pp: int | None = Field(None, ge=1, le=MAX_GPUS, description="pipeline stages per replica (unset: the deployment's)")
    replicas: int = Field(1, ge=1, description="replicas in this pool")
    batching: Batching | None = Field(None, description="batching of this pool (unset: the deployment's)")
    kv_cache: KVCache | None = Field(None, description="KV cache of this pool (unset: the deployment's)")


class Link(_Strict):
    """The network between the prefill and decode pools (per prefill replica, one direction)."""

    bandwidth_gbps: float = Field(gt=0, allow_inf_nan=False, description="GB/s (1e9 bytes per second)")
    latency_s: float = Field(0.0, ge=0, allow_inf_nan=False, description="seconds per transfer")


class Disaggregation(_Strict):
    """Prefill/decode disaggregation: prompts on one pool, decoding on another, KV over a link."""

    prefill: Pool = Field(description="the pool that runs prompts")
    decode: Pool = Field(description="the pool that decodes, after the KV cache arrives")
    link: Link = Field(description="the network that carries the KV cache from prefill to decode")


class Speculative(_Strict):
    """Speculative decoding: draft ``k`` tokens, verify them in one target step."""

    method: Literal["draft_model", "ngram", "eagle", "medusa"] = Field(
        description="what drafts: a smaller model, prompt n-gram lookup, or eagle/medusa heads on the target")
    draft_model: str | None = Field(None, description="catalog name (method draft_model)")
    k: int = Field(4, ge=1, le=16, description="tokens drafted per step")
    acceptance: float = Field(0.7, ge=0, lt=1, description="probability that each draft token is accepted")
    tree_tokens: int | None = Field(None, ge=1, description="eagle/medusa: tokens verified per sequence "
                                                            "(a tree of candidates; default k + 1)")
    head_layers: int = Field(1, ge=1, description="eagle: decoder layers in the draft head")
    ngram_cost_s: float = Field(2e-4, ge=0, description="ngram: seconds per step to look up the prompt")

    @model_validator(mode="after")
    def _check(self) -> "Speculative":
        if self.method == "draft_model" and not self.draft_model:
            raise ValueError("draft_model is required when method is draft_model")
        if self.method != "draft_model" and self.draft_model:
            raise ValueError(f"draft_model is only used with method draft_model (method is {self.method})")
        if self.tree_tokens is not None and self.method not in ("eagle", "medusa"):
            raise ValueError("tree_tokens applies to eagle and medusa only")
        if self.tree_tokens is not None and self.tree_tokens < self.k + 1:
            raise ValueError(f"tree_tokens ({self.tree_tokens}) must be at least k + 1 ({self.k + 1})")
        return self


class MoE(_Strict):
    """Mixture-of-experts execution: expert load balance, expert parallelism, attention layout."""

    balance: Literal["uniform", "zipf"] = Field("uniform", description="how tokens spread over experts: evenly, "
                                                                   "or by a Zipf popularity (skew)")
    skew: float = Field(1.2, gt=0, description="zipf exponent of expert popularity")
    expert_parallel: int | None = Field(None, ge=1, le=MAX_GPUS, description="GPUs the experts are spread over (= tp)")
    attention: Literal["tp", "dp"] = Field("tp", description="dp: each GPU attends for its share of sequences")


class CacheTier(_Strict):
    """A response cache in front of the model."""

    hit_rate: float = Field(ge=0, le=1, description="share of requests answered from this cache")
    lookup_s: float = Field(0.0, ge=0, description="seconds per lookup, hit or miss")


class ServiceCache(_Strict):
    """Exact (same prompt) and semantic (similar prompt) response caches, looked up in that order."""

    exact: CacheTier | None = Field(None, description="cache of answers to identical prompts (looked up first)")
    semantic: CacheTier | None = Field(None, description="cache of answers to similar prompts")


class SmallModel(_Strict):
    """The first stage of a cascade: a smaller model on its own replicas."""

    model: str = Field(description="catalog name or config.json path of the small model")
    gpu: str | None = Field(None, description="GPU profile of the small model (unset: the deployment's)")
    tp: int = Field(1, ge=1, le=MAX_GPUS, description="tensor-parallel GPUs per small-model replica")
    pp: int = Field(1, ge=1, le=MAX_GPUS, description="pipeline stages per small-model replica")
    replicas: int = Field(1, ge=1, description="replicas of the small model")
    weight_dtype: Literal["bf16", "fp16", "fp8", "int8", "int4", "nvfp4", "sparse24"] | None = Field(
        None, description="weight precision of the small model (unset: the deployment's)")
    batching: Batching | None = Field(None, description="batching of the small model (unset: the deployment's)")
    kv_cache: KVCache | None = Field(None, description="KV cache of the small model (unset: the deployment's)")


class CascadeRoute(_Strict):
    """Which requests try the small model: a random ``share``, or those up to ``max_prompt_tokens``."""

    share: float | None = Field(None, ge=0, le=1, description="random share of requests sent to the small model "
                                                               "(give this or max_prompt_tokens)")
    max_prompt_tokens: int | None = Field(None, ge=1, description="requests with prompts up to this length go to "
                                                                  "the small model (give this or share)")

    @model_validator(mode="after")
    def _one(self) -> "CascadeRoute":
        if (self.share is None) == (self.max_prompt_tokens is None):
            raise ValueError("give exactly one of share, max_prompt_tokens")
        return self


class Cascade(_Strict):
    """Model cascade: routed requests run on the small model; a share of them then on the large one."""

    small: SmallModel = Field(description="the small model and its replicas")
    route: CascadeRoute = Field(description="which requests try the small model first")
    escalate: float = Field(0.0, ge=0, le=1, description="share of small-model answers sent on to the large model")


class Deployment(_Strict):
    """Hardware, parallelism, precision and scheduling of the serving system."""

    gpu: str = Field("h100-sxm", description="GPU profile name (`servesim gpus`)")
    engine: str = Field("fused", description="engine profile: a catalog name (`servesim engines`) or the path "
                                             "of an engine profile YAML whose `name` matches its file name")
    engine_version: str | None = Field(
        None, max_length=64, description="pin the engine version whose measured kernel tables price the steps "
                                         "where several exist (`servesim engines`); default: the newest")
    overlap_host: bool | None = Field(
        None, description="the engine's host work for the next step (scheduling, input preparation) runs "
                          "during the current GPU step: vLLM --async-scheduling, SGLang's overlap scheduler, "
                          "TensorRT-LLM's overlap scheduler; unset: the engine profile's default "
                          "(`servesim engines`)")
    tp: int = Field(1, ge=1, le=MAX_GPUS, description="tensor-parallel GPUs per replica")

    @field_validator("engine_version", mode="before")
    @classmethod
    def _version_is_text(cls, v: object) -> object:
        """YAML and ``--set`` read ``0.10`` as the number 0.1: say how to write a version instead."""
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            raise ValueError(f"a version is text: quote it, e.g. engine_version: \"{v}\" in YAML or "
                             f"--set 'deployment.engine_version=\"{v}\"' (unquoted, {v} is read as a number)")
        return v

    pp: int = Field(1, ge=1, le=MAX_GPUS, description="pipeline stages per replica")
    cp: int = Field(1, ge=1, le=MAX_GPUS, description="context parallelism: GPUs a long prompt's attention is split over")
    replicas: int = Field(1, ge=1, description="identical replicas behind the router")
    weight_dtype: Literal["bf16", "fp16", "fp8", "int8", "int4", "nvfp4", "sparse24"] = Field(
        "bf16", description="weight precision (int4: weight-only; nvfp4: 4-bit floats on fp4 tensor cores, "
                            "Blackwell; sparse24: 2:4 structured sparsity)")
    kv_dtype: Literal["bf16", "fp16", "fp8"] = Field("bf16", description="KV-cache precision")
    batching: Batching = Field(Batching(), description="how each replica forms batches")
    kv_cache: KVCache = Field(KVCache(), description="paged KV-cache memory of each replica")
    router: RouterPolicy = Field(
        "round_robin", description="which replica takes a request (prefix_aware needs kv_cache.prefix_caching)")
    max_outstanding_per_replica: int | None = Field(
        None, ge=1, description="hold requests at the router (one FIFO queue) while every replica has this many")
    disaggregation: Disaggregation | None = Field(None, description="prefill and decode on separate pools (unset: colocated)")
    speculative: Speculative | None = Field(None, description="speculative decoding (unset: off)")
    moe: MoE | None = Field(None, description="mixture-of-experts execution (unset: uniform experts, no expert parallelism)")
    service_cache: ServiceCache | None = Field(None, description="response caches in front of the model (unset: none)")
    cascade: Cascade | None = Field(None, description="a small model in front of this one (unset: none)")

    @model_validator(mode="after")
    def _check(self) -> "Deployment":
        if self.moe is not None and self.moe.expert_parallel is not None and self.moe.expert_parallel != self.tp:
            raise ValueError(f"moe.expert_parallel ({self.moe.expert_parallel}) must equal tp ({self.tp}): "
                             "experts are spread over the replica's tensor-parallel GPUs")
        if self.moe is not None and self.moe.attention == "dp" and self.moe.expert_parallel is None:
            raise ValueError("moe.attention dp needs moe.expert_parallel")
        if self.router == "prefix_aware" and not self.kv_cache.prefix_caching:
            raise ValueError("router prefix_aware needs kv_cache.prefix_caching: true")
        if self.disaggregation is not None and self.max_outstanding_per_replica is not None:
            raise ValueError("max_outstanding_per_replica is not supported with disaggregation")
        return self

    def part(self, inherit: dict[str, Any], fixed: dict[str, Any]) -> "Deployment":
        """The deployment of one part of this one (a disaggregated pool, a cascade's small model): the
        keys of ``inherit`` where set (None keeps this deployment's value), those of ``fixed`` as given."""
        own = {k: getattr(self, k) if v is None else v for k, v in inherit.items()}
        return self.model_copy(update={**own, **fixed})


class SLO(_Strict):
    """Service-level objectives a request must meet to count towards goodput (seconds)."""

    ttft_s: float | None = Field(2.0, gt=0, description="time to first token (null: no bound)")
    tpot_s: float | None = Field(0.1, gt=0, description="time per output token after the first (null: no bound)")
    e2e_s: float | None = Field(None, gt=0, description="end-to-end latency of a request (null: no bound)")


class Scenario(_Strict):
    """One simulation: model × deployment × workload × SLOs, with a seed."""

    model: str = Field("llama-3.1-8b", description="catalog name (`servesim models`), Hugging Face id, or path "
                                                   "of a config.json")
    deployment: Deployment = Field(Deployment(), description="hardware, parallelism, precision and scheduling")
    workload: WorkloadConfig = Field(description="arrival process, request count and lengths")
    slo: SLO = Field(SLO(), description="service-level objectives in seconds, for goodput")
    seed: int = Field(0, description="seed of every random draw: equal seeds give identical runs")
    name: str = Field("", description="label of the run (`scenario` in summary.json)")

    @model_validator(mode="after")
    def _check(self) -> "Scenario":
        d = self.deployment
        pools = [d.batching] if d.disaggregation is None else [
            p.batching or d.batching for p in (d.disaggregation.prefill, d.disaggregation.decode)]
        for b in pools:
            if b.policy == "continuous" and b.max_batched_tokens < b.max_batch_size:
                raise ValueError(f"deployment.batching.max_batched_tokens ({b.max_batched_tokens}) must be at "
                                 f"least max_batch_size ({b.max_batch_size}) so every running request can decode")
        on = {"kv_cache.prefix_caching": d.kv_cache.prefix_caching, "disaggregation": d.disaggregation,
              "speculative": d.speculative, "cascade": d.cascade}
        features = [k for k, v in on.items() if v]
        if features and any(b.policy != "continuous" for b in pools):
            raise ValueError(f"{', '.join(features)} need batching.policy continuous")
        if d.disaggregation is not None and d.speculative is not None:
            raise ValueError("speculative decoding with disaggregation is not modelled; use one of them")
        if d.disaggregation is not None and d.cp > 1:
            raise ValueError("context parallelism with disaggregation is not modelled; use one of them")
        return self
