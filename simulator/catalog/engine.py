"""Engine profiles: how a serving framework runs the same model (fusion, KV layout, overheads)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
    cuda_graphs: bool = True                # decode steps replayed from CUDA graphs
    upcast_norm: bool = False               # norms computed in fp32 with extra cast kernels
    logits_fp32: bool = False               # LM-head output upcast to fp32
    cpu_overhead_per_step_s: float = Field(0.0, ge=0)   # scheduler + launch bookkeeping
    cpu_overhead_per_seq_s: float = Field(0.0, ge=0)    # per sequence in the batch (sampling, detokenize)
    cpu_launch_per_kernel_s: float = Field(0.0, ge=0)   # host time to dispatch one kernel eagerly
    kv_copy_Bps: float | None = Field(None, gt=0)      # dynamic cache: measured concatenation throughput, bytes/s
    elementwise_kernel_s: float | None = Field(None, gt=0)  # measured shortest time of one small eager elementwise kernel
    status: Literal["default", "calibrated"] = "default"
    source: str = ""
