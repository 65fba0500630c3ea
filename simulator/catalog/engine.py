"""Engine profiles: how a serving framework runs the same model (fusion, KV layout, overheads)."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from ..schema import StrictModel

from .engine_scheduler import EngineScheduler


def version_key(version: str) -> tuple[int, ...]:
    """``"0.12.0"`` -> (0, 12, 0), for ordering engine versions (suffixes such as ``rc3`` ignored)."""
    return tuple(int(x) for x in re.findall(r"\d+", version.split("rc")[0])[:3])


def release_key(version: str) -> tuple[int, ...] | None:
    """:func:`version_key` of a version that names a release (``"0.14.1"``); None for one that does not
    (empty, ``nan``, a nightly build id)."""
    return version_key(version) if version[:1].isdigit() else None


class KernelFamilies(StrictModel):
    """Which kernel families an engine runs on NVIDIA GPUs (names as the engines' docs and code use
    them). With ``tables``, step prices use the efficiency fitted from that engine's own measured
    kernels on the GPU where ``hwprofiles/kernels/<gpu>/<tables>.yaml`` exists
    (``simulator/catalog/kernels.py``); elsewhere the GPU profile's own (FlashAttention-2, cuBLAS)."""

    attention_prefill: str = "fa2"          # e.g. fa2, fa3, trtllm-fmha, flashinfer
    attention_decode: str = "fa2"           # e.g. fa3, xqa, flashinfer
    mla: str | None = None                  # e.g. flashmla, trtllm-mla, flashinfer-mla
    gemm: str = "cublas"                    # e.g. cublas, cutlass-fp8
    moe: str | None = None                  # e.g. triton fused_moe, cutlass, trtllm-gen
    all_reduce: Literal["nccl", "custom"] = "nccl"   # custom: one-shot/two-shot NVLink all-reduce kernels
    # how data-parallel attention ranks reach their experts: two bf16 all-to-alls, or an all-gather of
    # the tokens in the experts' input format and a reduce-scatter (simulator/perf/moe_comm.py)
    moe_dispatch: Literal["all-to-all", "all-gather"] = "all-to-all"
    tables: Literal["vllm", "sglang", "trtllm"] | None = None   # whose measured kernel tables price the ops
    tables_version: str | None = None       # that engine's version (None: the newest tables; deployment.engine_version)
    source: str = ""


class EngineProfile(StrictModel):
    """Which kernels a framework fuses, how it stores KV, and its CPU cost per step (seconds)."""

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
    # MLA attention: absorbed (attention over the cached latent, kv_b_proj folded into q and the
    # output: vLLM, SGLang) or expanded (every step decompresses all cached latents through kv_b_proj
    # into per-head K and V, assembles K with two copies and runs ordinary attention: transformers)
    mla_form: Literal["absorbed", "expanded"] = "absorbed"
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
    # The engine's host work for step n+1 (scheduling, input preparation, sampling bookkeeping) runs
    # while the GPU runs step n (vLLM async scheduling, SGLang and TensorRT-LLM overlap schedulers):
    # a step then lasts max(GPU time, host time) instead of their sum.
    overlap_host: bool = False
    # the first engine version whose server overlaps host work by default (older versions: off unless
    # asked for); None: every version of the profile's engine behaves as ``overlap_host`` says
    overlap_host_since: str | None = None
    version: str | None = None              # engine version the profile describes
    kernels: KernelFamilies = KernelFamilies()
    # scheduling rules and server defaults of the engine; None: servesim's generic scheduler
    scheduler: EngineScheduler | None = None
    status: Literal["default", "calibrated", "sourced"] = "default"
    source: str = ""

    def overlaps_host_at(self, version: str) -> bool:
        """Whether the engine's server at ``version`` overlaps host work by default (a version that names
        no release: the profile's own default)."""
        key = release_key(version)
        if not self.overlap_host or self.overlap_host_since is None or key is None:
            return self.overlap_host
        return key >= version_key(self.overlap_host_since)

    @model_validator(mode="after")
    def _packed_reads_pages(self) -> "EngineProfile":
        if self.attention == "packed" and self.kv_cache != "paged":
            raise ValueError("attention: packed gathers K/V from a paged cache: set kv_cache: paged")
        return self
