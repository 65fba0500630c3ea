"""Routed experts as one fused MoE module, priced by an engine's measured ``moe_<dtype>`` family.

Where an engine's kernel overlay has a ``moe_bf16`` or ``moe_fp8`` kernel family (fitted by
``python -m calibration.kerneldb`` on the engine's own MoE table: aiconfigurator-core's
``moe_perf``, which times ``moe.forward`` on given router logits, i.e. top-k routing, token
permutation, the w13 and w2 grouped GEMMs, the activation and the weighted un-permute), a MoE
layer's routed experts are one operation: FLOPs and bytes of :func:`simulator.perf.ops.fused_moe_cost`
over the efficiency read at x = log2(routed rows per active expert), y = log2(weight elements of the
active experts), plus the family's fixed time (:func:`simulator.perf.roofline.floor_curve_time`).
The router GEMM and the expert-parallel all-to-all stay separate operations, as in the tables.
Without such a family the experts' GEMMs are priced one by one (``StepModel._gemm``).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..catalog.gpu import GPUProfile
from ..catalog.model import ModelArch
from .ops import WEIGHT_BYTES, ExpertRouting, fused_moe_cost
from .roofline import OpTime, floor_curve_time, log2

#: servesim weight dtype -> the overlay family of that MoE weight format (others: GEMM by GEMM).
MOE_CURVES = {"bf16": "moe_bf16", "fp16": "moe_bf16", "fp8": "moe_fp8"}


@dataclass(frozen=True)
class FusedMoE:
    """One GPU's share of a MoE layer's routed experts."""

    curve: str            # kernel family name (moe_bf16 | moe_fp8)
    hidden: int
    inter: int            # expert width on this GPU (after expert tensor parallelism)
    gated: bool
    w_bytes: float        # bytes per weight element
    dtype: str            # tensor-core dtype of the GEMMs


def moe_curve(gpu: GPUProfile, weight_dtype: str) -> str | None:
    """The name of ``gpu``'s fused-MoE family for ``weight_dtype``, or None if it has none."""
    name = MOE_CURVES.get(weight_dtype)
    return name if name is not None and name in gpu.efficiency.kernels else None


def fused_moe_of(model: ModelArch, gpu: GPUProfile, weight_dtype: str, compute_dtype: str,
                 expert_tp: int) -> FusedMoE | None:
    """``model``'s routed experts as one fused module on ``gpu`` (each expert split over
    ``expert_tp`` GPUs), or None where the model has no experts or the overlay no such family."""
    if model.moe is None:
        return None
    name = moe_curve(gpu, weight_dtype)
    if name is None:
        return None
    return FusedMoE(name, model.hidden_size, model.moe.expert_intermediate_size // expert_tp, model.gated_mlp,
                    WEIGHT_BYTES[weight_dtype], compute_dtype)


def moe_features(routed: float, active: float, hidden: int, inter: int, gated: bool) -> tuple[float, float]:
    """(log2 routed rows per active expert, log2 weight elements of the active experts)."""
    a = max(active, 1e-9)
    return log2(routed / a), log2(max(active, 1.0) * hidden * inter * (3 if gated else 2))


def fused_moe_time(gpu: GPUProfile, f: FusedMoE, routing: ExpertRouting, tokens: float) -> OpTime:
    """One layer's routed experts for a step of ``tokens`` tokens: the slowest expert-parallel GPU."""
    def on_gpu(routed: float, active: float) -> OpTime:
        fl, by = fused_moe_cost(routed, active, f.hidden, f.inter, f.gated, f.w_bytes)
        x, y = moe_features(routed, active, f.hidden, f.inter, f.gated)
        return floor_curve_time(gpu, f.curve, fl, by, f.dtype, x, y)
    return routing.slowest(tokens, on_gpu)
