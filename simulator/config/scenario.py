"""Pydantic models of a scenario file: what is served, on what, under which traffic and SLOs."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..workload.config import WorkloadConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Batching(_Strict):
    """How a replica forms batches."""

    policy: Literal["static", "dynamic", "continuous"] = "continuous"
    max_batch_size: int = Field(256, ge=1, description="requests in a batch")
    max_batched_tokens: int = Field(8192, ge=1, description="tokens per step (continuous batching)")
    chunked_prefill: bool = True
    timeout_s: float = Field(0.05, ge=0, description="dynamic: seconds a batch waits to fill")


class KVCache(_Strict):
    """Paged KV-cache memory of a replica."""

    block_size: int = Field(16, ge=1, description="tokens per block")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="share of GPU memory the engine takes")
    preemption: Literal["recompute", "swap"] = "recompute"
    num_blocks: int | None = Field(None, ge=1, description="override: blocks per replica (else from memory)")


class Deployment(_Strict):
    """Hardware, parallelism, precision and scheduling of the serving system."""

    gpu: str = "h100-sxm"
    engine: str = "fused"
    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    replicas: int = Field(1, ge=1)
    weight_dtype: Literal["bf16", "fp16", "fp8", "int8", "int4", "sparse24"] = "bf16"
    kv_dtype: Literal["bf16", "fp16", "fp8"] = "bf16"
    batching: Batching = Batching()
    kv_cache: KVCache = KVCache()
    router: Literal["round_robin", "least_outstanding", "least_kv", "random"] = "round_robin"
    max_outstanding_per_replica: int | None = Field(
        None, ge=1, description="hold requests at the router (one FIFO queue) while every replica has this many")


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
        b = self.deployment.batching
        if b.policy == "continuous" and b.max_batched_tokens < b.max_batch_size:
            raise ValueError(f"deployment.batching.max_batched_tokens ({b.max_batched_tokens}) must be at least "
                             f"max_batch_size ({b.max_batch_size}) so every running request can decode")
        return self
