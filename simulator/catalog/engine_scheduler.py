"""The scheduling rules of a serving engine: its server's batching defaults and how it admits and evicts.

A profile's ``scheduler:`` block. None (the default) keeps servesim's generic scheduler: greedy
admission, preempt-the-newest, re-admission in the same step. Every value is the engine's own
default on a Hopper-class GPU and names its source (code path and version) in the profile YAML.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..schema import StrictModel


class NewTokenRatio(StrictModel):
    """SGLang's estimate of how much of its remaining ``max_new_tokens`` a running request will still
    generate: admission reserves ``ratio`` x the running requests' remaining outputs. The ratio starts
    at ``init``, falls linearly to ``min`` over ``decay_steps`` decode steps, and after a retraction is
    reset to (tokens decoded + ``retract_steps`` x running) / Σ max output of the running requests,
    at most 1. Remaining outputs count at most ``clip_max_new_tokens`` each."""

    init: float = Field(gt=0, le=1, description="ratio at start")
    min: float = Field(gt=0, le=1, description="floor the ratio decays to")
    decay_steps: int = Field(ge=1, description="decode steps over which the ratio falls from init to min")
    retract_steps: int = Field(ge=1, description="decode steps of KV for every remaining request that a "
                                                 "retraction frees, and the head-room term of the reset ratio")
    clip_max_new_tokens: int = Field(ge=1, description="cap on one request's remaining output in the estimate")

    @model_validator(mode="after")
    def _order(self) -> "NewTokenRatio":
        if self.min > self.init:
            raise ValueError(f"min ({self.min}) must not exceed init ({self.init})")
        return self


class EngineScheduler(StrictModel):
    """Server defaults and admission/eviction rules of one engine version (see the module docstring)."""

    version: str = Field(min_length=1, description="engine version (or commit) the defaults are from")
    # server defaults, applied to a scenario's keys the user left unset (simulator/engine/engine_defaults.py)
    max_num_seqs: int | None = Field(None, ge=1, description="-> batching.max_batch_size")
    max_num_batched_tokens: int | None = Field(None, ge=1, description="-> batching.max_batched_tokens")
    chunked_prefill: bool | None = Field(None, description="-> batching.chunked_prefill")
    prefix_caching: bool | None = Field(None, description="-> kv_cache.prefix_caching")
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1, description="-> kv_cache.gpu_memory_utilization "
                                                 "(share of the whole GPU's memory; None where the engine's "
                                                 "figure means something else)")
    preemption: Literal["recompute", "swap"] | None = Field(None, description="-> kv_cache.preemption")
    # rules
    admission: Literal["greedy", "reserve", "token_ratio"] = Field(
        "greedy", description="greedy: admit while blocks for the next prompt chunk are free (vLLM); "
                              "reserve: admit only if the request's prompt + max output fits beside what the "
                              "running requests will still grow into (TensorRT-LLM GUARANTEED_NO_EVICT); "
                              "token_ratio: SGLang's new_token_ratio estimate")
    victim: Literal["newest", "fewest_generated"] = Field(
        "newest", description="whom a KV shortage evicts: the last admitted (vLLM), or the one with the fewest "
                              "generated tokens, longest prompt first among equals (SGLang retract_decode)")
    admit_after_preemption: bool = Field(True, description="false: a step that preempted admits no waiting request")
    mixed_batches: bool = Field(True, description="true: prefill chunks ride in the decode step (vLLM, TensorRT-LLM); "
                                "false: a step runs prefill chunks or decodes, prefills first when any fit "
                                "(SGLang without --enable-mixed-chunk)")
    new_token_ratio: NewTokenRatio | None = Field(None, description="token_ratio admission's estimate")

    @model_validator(mode="after")
    def _ratio_for_token_ratio(self) -> "EngineScheduler":
        if (self.admission == "token_ratio") != (self.new_token_ratio is not None):
            raise ValueError("new_token_ratio is required with admission token_ratio and used by it only")
        return self
