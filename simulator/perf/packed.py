"""Packed-batch masked attention, as Hugging Face transformers' ``paged|sdpa`` runs it.

Each layer of a step: the K and V of every scheduled sequence are gathered from the cache pages
into one packed tensor (2 gather kernels), expanded from the KV heads to all query heads for GQA
(2 copy kernels), and one scaled-dot-product attention runs over the packed batch with a mask:
every query token of the step against every key of every scheduled sequence, not only its own
(``q_total × kv_total`` query-key pairs, where the per-sequence kernels compute the causal pairs).

Pricing, per layer on one GPU (heads after tensor parallelism, ``d`` = head dim):

- attention: FLOPs 2 · heads · (d_qk + d_v) · q_total · kv_total; bytes: expanded K and V
  (kv_total · heads · (d_qk + d_v) · 2), the bf16 mask (q_total · kv_total · 2), query in and output
  out (q_total · heads · (d_qk + d_v) · 2). Time: with the GPU profile's prefill tile model, its
  tiles for one sequence of q_total queries, every one seeing all kv_total keys, without the split
  over keys (the masked kernels launch one CTA per head and block of queries: :func:`masked_tile_time`);
  without one, the attention-prefill curve at x = log2(q_total), y = log2(kv_total). Never faster
  than the memory roofline; one kernel. Divided by the engine's measured speed of its masked kernel against the calibrated one (:func:`kernel_efficiency`:
  ``packed_attention_efficiency_decode`` up to 64 query tokens, one query tile per head, where the
  masked kernels, unlike the calibrated flash kernel, do not split the keys over more blocks;
  ``packed_attention_efficiency`` from 512 query tokens; linear in log2(q_total) between);
- gather: every cached K and V entry read and written once (memory roofline);
- expansion: KV heads read, all query heads written, for K and V, at the engine's measured copy
  throughput ``kv_copy_Bps`` (else the memory roofline).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..errors import InputError
from .ops import ACT_BYTES, shard
from .roofline import OpTime, log2, prefill_attention_time
from .tiles import AttentionCall
from ..catalog.gpu import TileModel

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog.engine import EngineProfile
    from .step import StepModel

#: Kernels per layer besides the attention itself: gather of K and V, head expansion of K and V.
GATHER_KERNELS = 2
EXPAND_KERNELS = 2
#: log2 of the query tokens per step up to which the decode figure applies, and from which the chunk one does.
DECODE_LOG2_Q, CHUNK_LOG2_Q = 6.0, 9.0


def check_packed(sm: "StepModel") -> bool:
    """Whether ``sm``'s engine runs packed attention; refuses the layouts it is not modelled for."""
    if sm.engine.attention != "packed":
        return False
    if sm.cp > 1:
        raise InputError("cp", sm.cp, f"engine {sm.engine.name} runs packed attention: context parallelism is not "
                         "modelled with it; use cp: 1")
    if sm.dp > 1:
        raise InputError("deployment.moe.attention", "data_parallel", f"engine {sm.engine.name} runs packed "
                         "attention: data-parallel attention is not modelled with it")
    if sm.model.mla is not None:
        raise InputError("engine", sm.engine.name, f"runs packed attention, which is not modelled for "
                         f"{sm.model.name}'s multi-head latent attention; use an engine with per-sequence attention")
    return True


def chunk_weight(q_total: float) -> float:
    """Weight of the chunk figure (1 - weight: the decode figure) at ``q_total`` query tokens per step."""
    return min(1.0, max(0.0, (log2(q_total) - DECODE_LOG2_Q) / (CHUNK_LOG2_Q - DECODE_LOG2_Q)))


def kernel_efficiency(engine: "EngineProfile", q_total: float) -> float:
    """The engine's masked-kernel speed relative to the attention-prefill curve at ``q_total`` query tokens."""
    chunk = engine.packed_attention_efficiency or 1.0
    dec = engine.packed_attention_efficiency_decode or chunk
    w = chunk_weight(q_total)
    return dec + w * (chunk - dec)


def masked_tile_time(m: TileModel, peak_flops: float, heads: int, q: float, kv: float, d_qk: int, d_v: int) -> float:
    """Seconds of one masked SDPA call under the tile model ``m`` (see :mod:`simulator.perf.tiles`),
    without a split over the keys: ``heads · ceil(q / block_m)`` equal CTAs, each walking all ``kv``
    keys; alone on an SM below one CTA per SM, else ``ctas_per_sm`` to an SM, each ``pair_slowdown``
    times slower, over whole waves."""
    per_key = 2.0 * (d_qk + d_v) / (peak_flops / m.sms)          # seconds per query row and key at 100%
    w = m.tile_s + per_key * m.block_m / m.tile_efficiency * m.block_n * math.ceil(max(kv, 1.0) / m.block_n)
    n = heads * math.ceil(max(q, 1.0) / m.block_m)
    if n <= m.sms:
        return m.launch_s + w
    slots = m.sms * m.ctas_per_sm
    return m.launch_s + m.pair_slowdown * w * math.ceil(n / slots) if n > slots else m.launch_s + m.pair_slowdown * w


def packed_pairs(q_total: float, kv_total: float) -> float:
    """Query-key pairs the masked kernel computes per head and layer."""
    return q_total * kv_total


def packed_attention_cost(sm: "StepModel", q_total: float, kv_total: float) -> tuple[float, float]:
    """(FLOPs, bytes) of one layer's masked SDPA over the packed step on one GPU."""
    heads, (dqk, dv) = sm.heads_gpu, sm.prefill_dims
    pairs = packed_pairs(q_total, kv_total)
    flops = 2.0 * heads * (dqk + dv) * pairs
    nbytes = (kv_total * heads * (dqk + dv) + pairs + q_total * heads * (dqk + dv)) * ACT_BYTES
    return flops, nbytes


def expansion_bytes(sm: "StepModel", kv_total: float) -> float:
    """Bytes one layer's GQA head expansion moves (K and V: KV heads read, query heads written); 0 without GQA."""
    s = shard(sm.model, sm.attn_tp)
    if s.heads == s.kv_heads:
        return 0.0
    return kv_total * (s.kv_heads + s.heads) * sm.model.head_dim * 2 * ACT_BYTES


def packed_attention(sm: "StepModel", q_total: float, kv_total: float) -> tuple[dict[str, float], dict[str, OpTime], int]:
    """(seconds by kind, op details, kernels) of the packed attention of all layers for one step."""
    L = sm.model.num_layers
    floor = sm.gpu.efficiency.min_kernel_s
    acc: dict[str, float] = {}
    ops: dict[str, OpTime] = {}
    fl, by = packed_attention_cost(sm, q_total, kv_total)
    heads, dims = sm.heads_gpu, sm.prefill_dims
    tiles = sm.gpu.efficiency.attention_prefill_tiles
    if tiles is not None:
        peak = sm.gpu.peak_flops(sm.act_dtype)
        sec = max(masked_tile_time(tiles, peak, heads, q_total, kv_total, *dims), by / sm.gpu.memory_bandwidth)
        t = OpTime(sec, fl, by, fl / peak, by / sm.gpu.memory_bandwidth)
    else:
        call = AttentionCall(1.0, heads, q_total, kv_total, packed_pairs(q_total, kv_total), *dims)
        t, _ = prefill_attention_time(sm.gpu, fl, by, sm.act_dtype, call)
    per_layer = max(t.seconds / kernel_efficiency(sm.engine, q_total), floor)
    acc["attention_packed"] = per_layer * L
    ops["attention_packed"] = OpTime(per_layer * L, fl * L, by * L, t.compute_s * L, t.memory_s * L)
    kernels = L
    gathered = 2.0 * kv_total * sm.kv_layer_bytes() * L    # K and V of every scheduled sequence, read + write
    kernels += sm.memory_op(acc, ops, "kv_gather", gathered, GATHER_KERNELS * L)
    moved = expansion_bytes(sm, kv_total) * L
    if moved > 0:
        kernels += sm.copy_op(acc, ops, "kv_expand", moved, EXPAND_KERNELS * L)
    return acc, ops, kernels
