"""The routing path around transformers' grouped expert GEMMs: the router's softmax and top-k, the sort
of the (token, expert) pairs, the gather of the routed rows, the expert histogram and its scan, the
masked fills, the routing-weight multiply, the inverse permutation and the sum over top-k.

Only engines whose experts run transformers' ``grouped_mm`` path (engine ``kernels.moe`` equal to
:data:`TORCH_GROUPED_MM`) run these kernels; fused-MoE engines do the same work inside their own
routing and permute kernels, which their kernel tables already price.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..catalog.engine import EngineProfile
from ..catalog.model import ModelArch
from .ops import ACT_BYTES

#: ``kernels.moe`` of the engines that run transformers' grouped_mm experts forward.
TORCH_GROUPED_MM = "torch grouped_mm"
INDEX_BYTES = 8.0   # int64 expert ids, permutations and arange
FP32 = 4.0


@dataclass(frozen=True)
class RoutingKernel:
    """One kernel of the routing path in one MoE layer: ``nbytes`` read plus written on one GPU,
    priced on the memory curve ``curve``; ``kind`` is the step breakdown it is added to."""

    name: str
    kind: str     # moe_routing (router, sort, index, histogram, scan, masked fill) | elementwise (casts, mul, sum)
    curve: str    # memory | memory_pointwise | memory_norm (ops.elementwise_parts)
    nbytes: float


def runs_grouped_routing(engine: EngineProfile, model: ModelArch) -> bool:
    """Whether ``engine`` runs the routing path of :func:`routing_kernels` for ``model``'s MoE layers."""
    return engine.kernels.moe == TORCH_GROUPED_MM and model.moe is not None and model.num_moe_layers > 0


def routing_kernels(tokens: float, top_k: int, hidden: int, experts: int, expert_width: int,
                    gated: bool = True) -> list[RoutingKernel]:
    """The routing kernels of one MoE layer over ``tokens`` tokens (read from transformers 5.17.0).

    S = tokens · top_k routed (token, expert) pairs; ``expert_width``: the experts' intermediate size
    on this GPU (the gate_up output is 2 × that wide when ``gated``). Bytes are read + written, bf16
    activations, int64 indices, fp32 router probabilities. Sources, transformers 5.17.0:

    - ``models/qwen3_moe/modeling_qwen3_moe.py`` ``Qwen3MoeTopKRouter.forward`` (and
      ``models/deepseek_v2/modeling_deepseek_v2.py`` ``DeepseekV2TopkRouter.forward``): softmax in fp32,
      ``torch.topk``, the top-k weights cast to bf16 (DeepSeek: scaled by ``routed_scaling_factor``).
    - ``integrations/moe.py`` ``grouped_mm_experts_forward``: ``torch.sort(expert_ids)`` (a copy of the
      keys, an index fill, the in-place key-value sort), ``perm // num_top_k``,
      ``hidden_states[perm // num_top_k]`` (row gather), ``sample_weights[perm]``, ``.int()``,
      ``torch.histc`` (zero fill + histogram), ``torch.cumsum`` (cub scan: init + scan),
      ``expert_ids_g >= num_experts``, ``clamp_``, ``masked_fill_`` before the up projection and
      ``masked_fill`` after each grouped GEMM, ``proj_out * sample_weights_g``, ``torch.arange`` and
      ``inv_perm[perm] = ...``, ``weighted_out[inv_perm]`` (row gather), ``.sum(dim=1)`` over top-k.

    The gate activation between the grouped GEMMs is not here: ``ops.elementwise_parts`` prices it.
    Not priced (the catalog does not record the router variant): Qwen3's sorted top-k (one more sort
    kernel) and top-k renormalisation (sum, divide), DeepSeek-V2's fp32 casts of the router input and
    weight. Above 4,096 pairs torch sorts with cub's radix sort (a few more kernels, the same order of
    bytes, negligible next to the row traffic).
    """
    b, s, h, e, a, ix = float(tokens), float(tokens) * top_k, float(hidden), float(experts), ACT_BYTES, INDEX_BYTES
    up = (2 if gated else 1) * float(expert_width)
    rows = s * h * a                      # one pass over the routed rows
    r, el = "moe_routing", "elementwise"
    return [
        RoutingKernel("router softmax", r, "memory_norm", b * e * (a + FP32)),
        RoutingKernel("router topk", r, "memory_norm", b * e * FP32 + s * (FP32 + ix)),
        RoutingKernel("topk weights cast", el, "memory", s * (FP32 + a)),
        RoutingKernel("sort: copy keys", el, "memory", 2 * s * ix),
        RoutingKernel("sort: index fill", r, "memory", s * ix),
        RoutingKernel("sort: key-value sort", r, "memory", 4 * s * ix),
        RoutingKernel("perm // top_k", r, "memory", 2 * s * ix),
        RoutingKernel("gather routed rows", r, "memory", 2 * rows + s * ix),
        RoutingKernel("gather routing weights", r, "memory", s * (2 * a + ix)),
        RoutingKernel("expert ids to int32", el, "memory", s * (ix + 4)),
        RoutingKernel("histc: zero fill", r, "memory", e * 4),
        RoutingKernel("histc", r, "memory", s * 4 + e * 4),
        RoutingKernel("cumsum: scan init", r, "memory", e * 4),
        RoutingKernel("cumsum: scan", r, "memory", 2 * e * 4),
        RoutingKernel("sentinel mask", r, "memory", s * (ix + 1)),
        RoutingKernel("clamp expert ids", r, "memory", 2 * s * ix),
        RoutingKernel("masked fill: routed rows", r, "memory_pointwise", 2 * rows + s),
        RoutingKernel("masked fill: gate_up out", r, "memory_pointwise", 2 * s * up * a + s),
        RoutingKernel("masked fill: down out", r, "memory_pointwise", 2 * rows + s),
        RoutingKernel("routing-weight multiply", el, "memory_pointwise", 2 * rows + s * a),
        RoutingKernel("arange", r, "memory", s * ix),
        RoutingKernel("inverse permutation", r, "memory", 3 * s * ix),
        RoutingKernel("gather back to token order", r, "memory", 2 * rows + s * ix),
        RoutingKernel("sum over top-k", el, "memory_norm", rows + b * h * a),
    ]


def layer_routing(model: ModelArch, tokens: float, expert_tp: int) -> list[RoutingKernel]:
    """:func:`routing_kernels` of one of ``model``'s MoE layers over ``tokens`` tokens on one GPU, its
    experts split ``expert_tp`` ways in width."""
    moe = model.moe
    if moe is None:
        return []
    return routing_kernels(tokens, moe.experts_per_token, model.hidden_size, moe.num_experts,
                           moe.expert_intermediate_size // expert_tp, model.gated_mlp)
