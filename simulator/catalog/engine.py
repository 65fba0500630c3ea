"""Engine profiles: how a serving framework runs the same model (fusion, KV layout, overheads)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EngineProfile(BaseModel):
    """Which kernels a framework fuses, how it stores KV, and its CPU cost per step (seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str
    fused_qkv: bool = True                  # one GEMM for Q, K and V
    fused_gate_up: bool = True              # one GEMM for gate and up
    fused_norm_residual: bool = True        # add + RMSNorm in one kernel
    fused_act_mul: bool = True              # SiLU(gate) * up in one kernel
    fused_rope: bool = True                 # RoPE inside the attention or QKV kernel
    kv_cache: Literal["paged", "dynamic"] = "paged"  # dynamic: concatenated every step (HF DynamicCache)
    # per_sequence: each sequence attends to its own keys (flash / paged kernels). packed: one masked SDPA
    # per layer over the whole step, every query token against every key of every scheduled sequence,
    # after gathering the pages into one K/V tensor and expanding it to all query heads (HF paged|sdpa)
    attention: Literal["per_sequence", "packed"] = "per_sequence"
    cuda_graphs: bool = True                # decode steps replayed from CUDA graphs
    upcast_norm: bool = False               # norms computed in fp32 with extra cast kernels
    logits_fp32: bool = False               # LM-head output upcast to fp32
    cpu_overhead_per_step_s: float = Field(0.0, ge=0)   # scheduler + launch bookkeeping
    cpu_overhead_per_seq_s: float = Field(0.0, ge=0)    # per sequence in the batch (sampling, detokenize)
    cpu_launch_per_kernel_s: float = Field(0.0, ge=0)   # host time to dispatch one kernel eagerly
    kv_copy_Bps: float | None = Field(None, gt=0)      # measured copy throughput, bytes/s: concatenation (dynamic
    #                                                   cache) or GQA head expansion (packed attention)
    kv_copy_floor_s: float = Field(0.0, ge=0)          # fixed time of one copy kernel: a copy of N bytes takes
    #                                                   kv_copy_floor_s + N / kv_copy_Bps (floor plus bandwidth)
    # packed attention: speed of the engine's masked SDPA kernel relative to the GPU profile's
    # attention-prefill curve for the same FLOPs and bytes (1 = as fast; measured per engine and backend)
    packed_attention_efficiency: float | None = Field(None, gt=0, le=4)         # steps with prompt chunks
    packed_attention_efficiency_decode: float | None = Field(None, gt=0, le=4)  # decode-only steps (default: the above)
    elementwise_kernel_s: float | None = Field(None, gt=0)  # measured shortest time of one small eager elementwise kernel
    status: Literal["default", "calibrated"] = "default"
    source: str = ""

    @model_validator(mode="after")
    def _packed_reads_pages(self) -> "EngineProfile":
        if self.attention == "packed" and self.kv_cache != "paged":
            raise ValueError("attention: packed gathers K/V from a paged cache: set kv_cache: paged")
        return self
