"""Pydantic models of a scenario file: what is served, on what, under which traffic and SLOs.

Every serving optimisation is a key whose default leaves it off (see docs/features.md).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..workload.config import WorkloadConfig
from ..schema import StrictModel


#: Most GPUs one parallel dimension (tp, pp, cp, expert parallelism) may span: beyond any system built.
MAX_GPUS = 65_536


class _Strict(StrictModel):
    """Unknown keys are errors; floats finite; no booleans for numbers."""


class Batching(_Strict):
    """How a replica forms batches."""

    policy: Literal["static", "dynamic", "continuous"] = "continuous"
    max_batch_size: int = Field(256, ge=1, le=2**20, description="requests in a batch")
    max_batched_tokens: int = Field(8192, ge=1, le=2**31, description="tokens per step (continuous batching)")
    chunked_prefill: bool = True
    timeout_s: float = Field(0.05, ge=0, description="dynamic: seconds a batch waits to fill")


class KVCache(_Strict):
    """Paged KV-cache memory of a replica."""

    block_size: int = Field(16, ge=1, le=2**20, description="tokens per block")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="share of GPU memory the engine takes")
    preemption: Literal["recompute", "swap"] = "recompute"
    num_blocks: int | None = Field(None, ge=1, le=2**40, description="override: blocks per replica (else from memory)")
    prefix_caching: bool = Field(False, description="share full KV blocks between requests with equal prefixes")


class Pool(_Strict):
    """One pool of a disaggregated deployment; unset keys inherit the deployment's."""

    gpu: str | None = None
    tp: int | None = Field(None, ge=1, le=MAX_GPUS)
    pp: int | None = Field(None, ge=1, le=MAX_GPUS)
    replicas: int = Field(1, ge=1)
    batching: Batching | None = None
    kv_cache: KVCache | None = None


class Link(_Strict):
    """The network between the prefill and decode pools (per prefill replica, one direction)."""

    bandwidth_gbps: float = Field(gt=0, allow_inf_nan=False, description="GB/s (1e9 bytes per second)")
    latency_s: float = Field(0.0, ge=0, allow_inf_nan=False, description="seconds per transfer")


class Disaggregation(_Strict):
    """Prefill/decode disaggregation: prompts on one pool, decoding on another, KV over a link."""

    prefill: Pool
    decode: Pool
    link: Link


class Speculative(_Strict):
    """Speculative decoding: draft ``k`` tokens, verify them in one target step."""

    method: Literal["draft_model", "ngram", "eagle", "medusa"]
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

    balance: Literal["uniform", "zipf"] = "uniform"
    skew: float = Field(1.2, gt=0, description="zipf exponent of expert popularity")
    expert_parallel: int | None = Field(None, ge=1, le=MAX_GPUS, description="GPUs the experts are spread over (= tp)")
    attention: Literal["tp", "dp"] = Field("tp", description="dp: each GPU attends for its share of sequences")


class CacheTier(_Strict):
    """A response cache in front of the model."""

    hit_rate: float = Field(ge=0, le=1)
    lookup_s: float = Field(0.0, ge=0, description="seconds per lookup, hit or miss")


class ServiceCache(_Strict):
    """Exact (same prompt) and semantic (similar prompt) response caches, looked up in that order."""

    exact: CacheTier | None = None
    semantic: CacheTier | None = None


class SmallModel(_Strict):
    """The first stage of a cascade: a smaller model on its own replicas."""

    model: str
    gpu: str | None = None
    tp: int = Field(1, ge=1, le=MAX_GPUS)
    pp: int = Field(1, ge=1, le=MAX_GPUS)
    replicas: int = Field(1, ge=1)
    weight_dtype: Literal["bf16", "fp16", "fp8", "int8", "int4", "sparse24"] | None = None
    batching: Batching | None = None
    kv_cache: KVCache | None = None


class CascadeRoute(_Strict):
    """Which requests try the small model: a random ``share``, or those up to ``max_prompt_tokens``."""

    share: float | None = Field(None, ge=0, le=1)
    max_prompt_tokens: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> "CascadeRoute":
        if (self.share is None) == (self.max_prompt_tokens is None):
            raise ValueError("give exactly one of share, max_prompt_tokens")
        return self


class Cascade(_Strict):
    """Model cascade: routed requests run on the small model; a share of them then on the large one."""

    small: SmallModel
    route: CascadeRoute
    escalate: float = Field(0.0, ge=0, le=1, description="share of small-model answers sent on to the large model")


class Deployment(_Strict):
    """Hardware, parallelism, precision and scheduling of the serving system."""

    gpu: str = "h100-sxm"
    engine: str = Field("fused", description="engine profile: a catalog name (`servesim engines`) or the path "
                                             "of an engine profile YAML whose `name` matches its file name")
    engine_version: str | None = Field(
        None, max_length=64, description="pin the engine version whose measured kernel tables price the steps "
                                         "where several exist (`servesim engines`); default: the newest")
    tp: int = Field(1, ge=1, le=MAX_GPUS)
    pp: int = Field(1, ge=1, le=MAX_GPUS)
    cp: int = Field(1, ge=1, le=MAX_GPUS, description="context parallelism: GPUs a long prompt's attention is split over")
    replicas: int = Field(1, ge=1)
    weight_dtype: Literal["bf16", "fp16", "fp8", "int8", "int4", "sparse24"] = "bf16"
    kv_dtype: Literal["bf16", "fp16", "fp8"] = "bf16"
    batching: Batching = Batching()
    kv_cache: KVCache = KVCache()
    router: Literal["round_robin", "least_outstanding", "least_kv", "random", "prefix_aware"] = "round_robin"
    max_outstanding_per_replica: int | None = Field(
        None, ge=1, description="hold requests at the router (one FIFO queue) while every replica has this many")
    disaggregation: Disaggregation | None = None
    speculative: Speculative | None = None
    moe: MoE | None = None
    service_cache: ServiceCache | None = None
    cascade: Cascade | None = None

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


class SLO(_Strict):
    """Service-level objectives a request must meet to count towards goodput (seconds)."""

    ttft_s: float | None = Field(2.0, gt=0)
    tpot_s: float | None = Field(0.1, gt=0)
    e2e_s: float | None = Field(None, gt=0)


class Scenario(_Strict):
    """One simulation: model × deployment × workload × SLOs, with a seed."""

    model: str = "llama-3.1-8b"
    deployment: Deployment = Deployment()
    workload: WorkloadConfig
    slo: SLO = SLO()
    seed: int = 0
    name: str = ""

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
