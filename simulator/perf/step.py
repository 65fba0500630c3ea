"""Time of one forward step of a batch: sum of per-operation rooflines, plus communication,
launch gaps and the engine's CPU overhead. Memoised: the engine calls this for every step.

A step depends on its batch only through :class:`BatchShape` (token counts and summed
context lengths), so callers compute those with numpy and ask once.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Literal, overload

from ..catalog.engine import EngineProfile
from ..catalog.gpu import GPUProfile
from ..catalog.kernels import with_engine_kernels
from ..catalog.model import ModelArch, dtype_bytes
from ..errors import InputError
from .comm import collective_time, transfer_time
from .ops import (ACT_BYTES, WEIGHT_BYTES, ExpertPlan, ExpertRouting, Gemm, attention_cost,
                  attention_heads_dims, elementwise_parts, gemm_cost, layer_gemms, mla_expand_copy_bytes, shard)
from .fused_moe import fused_moe_of, fused_moe_time
from .roofline import (OpTime, curve_for, decode_attention_time, efficiency, floor_curve_time, log2, op_time,
                       prefill_attention_time)
from .packed import check_packed, packed_attention
from .lean import memoised_sums_function, part_sums
from .memo import PriceMemo
from .moe_comm import dispatch_of, moe_comm_time
from .moe_routing import layer_routing, runs_grouped_routing
from .part import AttnSums, Part, StepCost, StepTime, add_op as _add, attn_key, seqs_key, step_time, tokens_key
from .tiles import AttentionCall
from .shape import BatchShape, decode_pairs, quantize, window_pairs
from .step_inputs import KV_DTYPES, WEIGHT_DTYPES, checked_dtypes

__all__ = ["BatchShape", "StepModel", "StepCost", "StepTime", "Part", "quantize", "window_pairs", "decode_pairs",
           "WEIGHT_DTYPES", "KV_DTYPES"]


class StepModel:
    """Step-time predictor for one replica: model × GPU × engine × parallelism × precision.

    ``experts`` sets MoE routing balance, expert parallelism and data-parallel attention; ``cp``
    splits prefill attention over that many GPUs as ring attention (context parallelism)."""

    def __init__(self, model: ModelArch, gpu: GPUProfile, engine: EngineProfile, *, tp: int = 1,
                 pp: int = 1, weight_dtype: str = "bf16", kv_dtype: str = "bf16",
                 experts: ExpertPlan | None = None, cp: int = 1) -> None:
        plan = experts or ExpertPlan()
        cdt, self.sparse_peak = checked_dtypes(model, gpu, weight_dtype=weight_dtype, kv_dtype=kv_dtype, pp=pp,
                                               cp=cp, plan=plan)
        gpu = with_engine_kernels(gpu, engine.kernels.tables, kv_dtype, engine.kernels.all_reduce,
                                  engine.kernels.tables_version)   # its own kernels
        shard(model, tp)
        self.model, self.gpu, self.engine = model, gpu, engine
        self.tp, self.pp, self.cp, self.weight_dtype, self.kv_dtype = tp, pp, cp, weight_dtype, kv_dtype
        self.experts = plan
        self.grouped_moe = engine.kernels.moe is not None   # experts' GEMMs in one grouped kernel
        self.dp = plan.ep if plan.dp_attention else 1        # attention ranks splitting the sequences
        self.attn_tp = 1 if plan.dp_attention else tp        # GPUs one attention / dense layer is split over
        self.routing = (ExpertRouting(model.moe.num_experts, model.moe.experts_per_token, plan, model.name)
                        if model.moe is not None else None)
        self.compute_dtype = cdt
        self.dispatch = dispatch_of(engine.kernels.moe_dispatch, model, cdt, self.dp) \
            if self.dp > 1 and model.moe is not None else None   # attention ranks to experts (moe_comm.py)
        self.act_dtype = "bf16" if gpu.has_dtype("bf16") else next(iter(gpu.dense_tflops))
        self.expert_tp = 1 if plan.ep > 1 else self.attn_tp
        self.gemms = layer_gemms(model, self.attn_tp, engine, expert_tp=self.expert_tp)
        # transformers' grouped_mm experts: router, sort, gathers, masked fills, combine (perf/moe_routing.py)
        self.routing_layers = model.num_moe_layers if runs_grouped_routing(engine, model) else 0
        self.fused_moe = fused_moe_of(model, gpu, weight_dtype, cdt, self.expert_tp)   # the engine's measured fused MoE
        # expanded MLA: kv_b_proj runs over every cached latent in the attention part, not per new token
        self.mla_form = engine.mla_form if model.mla is not None else "absorbed"
        self.mla_expand = next((g for g in self.gemms if g.name == "kv_b_proj"), None) \
            if self.mla_form == "expanded" else None
        self.gemms = [g for g in self.gemms if g is not self.mla_expand]
        self.elem_parts = elementwise_parts(model, self.attn_tp, engine, self.fused_moe is not None)
        # absorbed MLA decode: the engine's measured latent-attention kernel where its overlay has one
        self.mla_decode = model.mla is not None and self.mla_expand is None \
            and "attention_decode_mla" in gpu.efficiency.kernels
        self.heads_gpu = shard(model, self.attn_tp).heads
        self.prefill_dims = attention_heads_dims(model, "prefill")
        self.swa_layers = model.sliding_window_layers if model.sliding_window else 0
        self.kv_heads_gpu = (self.heads_gpu if self.mla_expand is not None else 1) if model.mla is not None \
            else shard(model, tp).kv_heads
        self.graph_gap = gpu.efficiency.graph_launch_overhead_s
        self.eager_gap = gpu.efficiency.launch_overhead_s
        self.memo = PriceMemo()
        self._rounded_key = self.memo.rounded_key
        self._get = self.memo.get
        self.packed = check_packed(self)   # one masked SDPA over the whole step (perf/packed.py)
        self.lean = self.cp == 1 and self.dp == 1 and not self.packed   # parts looked up directly when memoised
        self._memoised_sums = memoised_sums_function(self.memo.entries, engine.cuda_graphs)   # perf/lean.py

    # ---- parts: each memoised on the few numbers it depends on -------------------------
    def _part(self, key: tuple, build) -> "Part":
        hit = self.memo.get(key)
        return hit if hit is not None else self.memo.put(key, Part.of(*build()))

    def _gemm_time(self, fl: float, by: float, dt: str, x: float, y: float, sparse: bool) -> OpTime:
        if not sparse or self.sparse_peak is None:
            return op_time(self.gpu, "gemm", fl, by, dt, x, y)
        eff = efficiency(curve_for(self.gpu, "gemm", dt), x, y)
        compute, memory = fl / self.sparse_peak, by / self.gpu.memory_bandwidth
        return OpTime(max(compute, memory) / eff, fl, by, compute, memory)

    def _gemm(self, g: Gemm, rows: float) -> tuple[float, OpTime]:
        """Seconds of ``g`` over all its layers for ``rows`` tokens (experts: the step's total tokens)."""
        wb = WEIGHT_BYTES[self.weight_dtype]
        plain = g.kind in ("router", "lm_head")
        dt = self.act_dtype if plain else self.compute_dtype
        gw = 2.0 if plain else wb
        if g.experts > 1 and self.routing is not None:   # the slowest expert-parallel GPU sets the time
            def on_gpu(routed: float, active: float) -> OpTime:
                fl, by = gemm_cost(routed, g.k, g.n, 0.0)
                by += active * g.k * g.n * gw
                # one grouped kernel streams every active expert's weights (fused MoE): its shape is
                # the summed weights; an engine without one runs each expert's GEMM on its own
                kn = g.k * g.n * (max(active, 1.0) if self.grouped_moe else 1.0)
                return self._gemm_time(fl, by, dt, log2(routed / max(active, 1e-9)), log2(kn), True)
            t = self.routing.slowest(rows, on_gpu)
        else:
            fl, by = gemm_cost(rows, g.k, g.n, gw)
            t = self._gemm_time(fl, by, dt, log2(rows), log2(g.k * g.n), not plain)
        return max(t.seconds, self.gpu.efficiency.min_kernel_s) * g.layers, t

    def memory_op(self, acc: dict, ops: dict, kind: str, nbytes: float, kernels: int, curve: str = "memory") -> int:
        """Price ``kernels`` memory-bound kernels moving ``nbytes`` on ``curve`` (memory, memory_norm or
        memory_pointwise: ops.elementwise_parts) at their mean bytes per kernel."""
        if kernels <= 0:
            return 0
        t = op_time(self.gpu, curve, 0.0, nbytes, self.act_dtype, log2(nbytes / kernels))
        floor = max(self.gpu.efficiency.min_kernel_s, self.engine.elementwise_kernel_s or 0.0)
        sec = max(t.seconds, floor * kernels)
        acc[kind] = acc.get(kind, 0.0) + sec
        ops[kind] = _add(ops.get(kind), t, 1, sec)
        return kernels

    def _tokens_part(self, m: float, m_all: int, graph: bool) -> "Part":
        """Everything that scales with the token count: weight GEMMs, norms, KV writes, TP/EP comm.
        ``m``: tokens on one GPU's dense path; ``m_all``: the step's tokens (routed to the experts)."""
        def build():
            acc: dict[str, float] = {}
            ops: dict[str, OpTime] = {}
            kernels = 0
            for g in self.gemms:
                if g.kind == "lm_head":
                    continue
                if g.experts > 1 and self.fused_moe is not None:   # priced below as one fused module
                    kernels += g.layers
                    continue
                sec, t = self._gemm(g, m_all if g.experts > 1 else m)
                acc[g.kind] = acc.get(g.kind, 0.0) + sec
                ops[g.kind] = _add(ops.get(g.kind), t, g.layers, sec)
                kernels += g.layers
            if self.fused_moe is not None and self.routing is not None:
                t, nl = fused_moe_time(self.gpu, self.fused_moe, self.routing, m_all), self.model.num_moe_layers
                sec = max(t.seconds, self.gpu.efficiency.min_kernel_s) * nl
                acc["moe"], ops["moe"] = acc.get("moe", 0.0) + sec, _add(ops.get("moe"), t, nl, sec)
            L = self.model.num_layers
            for curve, (eb, ek) in self.elem_parts.items():   # norms, adds, activation, RoPE
                kernels += self.memory_op(acc, ops, "elementwise", eb * m * L, ek * L, curve)
            for rk in layer_routing(self.model, m, self.expert_tp) if self.routing_layers else ():
                kernels += self.memory_op(acc, ops, rk.kind, rk.nbytes * self.routing_layers, self.routing_layers,
                                          rk.curve)
            if self.engine.kv_cache == "paged":
                kernels += self.memory_op(acc, ops, "kv_cache", 2.0 * m * self.kv_layer_bytes() * L,
                                           L * (2 if self.packed else 1))   # packed: K and V written apart
            kernels += self.memory_op(acc, ops, "embedding", 2.0 * m * self.model.hidden_size * ACT_BYTES, 1)
            act = m * self.model.hidden_size * ACT_BYTES
            comm = 0.0
            if self.attn_tp > 1:
                comm += collective_time(self.gpu, "all-reduce", act, self.attn_tp, graph) * (2 * L + 1)
            if self.dispatch is not None and self.routing is not None:
                comm += moe_comm_time(self.gpu, self.dispatch, self.routing.share_max, m, m_all, graph) \
                    * self.model.num_moe_layers
            if self.pp > 1:
                comm += (self.pp - 1) * transfer_time(act, self.gpu.link_bandwidth * 0.8, self.gpu.scaleup_latency_s)
            if comm:
                acc["communication"] = comm
            return acc, ops, kernels
        return self._part(tokens_key(m, m_all, graph), build)

    def _seqs_part(self, rows: float, graph: bool) -> "Part":
        """Per-token-with-logits work: LM head, sampling, logits gather (``rows`` on one GPU)."""
        def build():
            acc: dict[str, float] = {}
            ops: dict[str, OpTime] = {}
            kernels = 0
            for g in self.gemms:
                if g.kind == "lm_head":
                    sec, t = self._gemm(g, rows)
                    acc["lm_head"], ops["lm_head"] = sec, _add(None, t, 1, sec)
                    kernels += 1
            vocab = self.model.vocab_size / self.attn_tp
            samp = rows * vocab * (4.0 if self.engine.logits_fp32 else ACT_BYTES) * 3
            kernels += self.memory_op(acc, ops, "sampling", samp, 4)
            if self.attn_tp > 1:
                acc["communication"] = collective_time(self.gpu, "all-gather", rows * vocab * 4.0, self.attn_tp, graph)
            return acc, ops, kernels
        return self._part(seqs_key(rows, graph), build)

    def copy_op(self, acc: dict, ops: dict, kind: str, nbytes: float, kernels: int) -> int:
        """Price ``kernels`` cache copies moving ``nbytes`` at the engine's measured copy throughput
        (``kv_copy_Bps``: a concatenated cache, a GQA head expansion) plus a fixed time per kernel
        (``kv_copy_floor_s``), else as memory-bound kernels."""
        rate = self.engine.kv_copy_Bps
        if not rate:
            return self.memory_op(acc, ops, kind, nbytes, kernels)
        sec = max(kernels * self.engine.kv_copy_floor_s + nbytes / rate, kernels * self.gpu.efficiency.min_kernel_s)
        acc[kind] = acc.get(kind, 0.0) + sec
        ops[kind] = _add(ops.get(kind), OpTime(sec, 0.0, nbytes, 0.0, nbytes / self.gpu.memory_bandwidth), 1, sec)
        return kernels

    def kv_layer_bytes(self) -> float:
        kvb = self.model.kv_elements_per_token_per_layer() * dtype_bytes(self.kv_dtype)
        if self.model.mla is None:
            kvb = kvb * shard(self.model, self.attn_tp).kv_heads / self.model.num_kv_heads
        return kvb

    def _attn_part(self, kind: str, phase: str, a: AttnSums, graph: bool = False) -> "Part":
        """Attention of all layers (full and sliding-window ones) for one phase, on one GPU."""
        q, seqs, pairs, kv, pairs_w, kv_w = a

        def build():
            L, W = self.model.num_layers, self.swa_layers
            ops: dict[str, OpTime] = {}
            acc: dict[str, float] = {}
            total, kernels = 0.0, 0
            for layers, pr, kvv in ((L - W, pairs, kv), (W, pairs_w, kv_w)):
                if layers <= 0:
                    continue
                fl, by = attention_cost(self.model, self.attn_tp, phase, pr, q, kvv, self.kv_dtype, mla_form=self.mla_form)
                # prefill: FlashAttention tiles over the SMs (roofline.py); decode: its CTAs, one per
                # (sequence, KV head per GPU), streaming the cache (or the curve at their log2)
                if phase == "prefill":
                    call = AttentionCall(seqs, self.heads_gpu, q, kvv, pr, *self.prefill_dims)
                    t, calls = prefill_attention_time(self.gpu, fl, by, self.act_dtype, call)
                elif self.mla_decode:   # one latent KV head: the kernel's parallelism is over sequences
                    t, calls = floor_curve_time(self.gpu, "attention_decode_mla", fl, by, self.act_dtype,
                                                log2(seqs), log2(kvv / seqs)), 1
                else:
                    t, calls = decode_attention_time(self.gpu, fl, by, self.act_dtype, seqs * self.kv_heads_gpu,
                                                     kvv / seqs)
                sec = max(t.seconds, self.gpu.efficiency.min_kernel_s * calls) * layers
                total += sec
                ops[kind] = _add(ops.get(kind), t, layers, sec)
                kernels += layers * calls
                kernels += self._mla_expansion(acc, ops, kvv, layers)
            acc[kind] = total
            if self.cp > 1:
                acc["communication"] = self._cp_comm(phase, q, seqs, kv, total / L, graph) * L
            if self.engine.kv_cache == "dynamic":  # torch.cat of K and V: read the old cache, write it all
                kernels += self.copy_op(acc, ops, "kv_cache", 2.0 * kv * self.kv_layer_bytes() * L, 2 * L)
            return acc, ops, kernels
        return self._part(attn_key(kind, a, graph), build)

    def _mla_expansion(self, acc: dict, ops: dict, kv: float, layers: int) -> int:
        """Expanded MLA (``mla_form: expanded``): kv_b_proj over all ``kv`` cached + new latents and the
        two copies that assemble the per-head key, in ``layers`` layers; returns the kernels."""
        if self.mla_expand is None or layers <= 0 or kv <= 0:
            return 0
        g = replace(self.mla_expand, layers=layers)
        sec, t = self._gemm(g, kv)
        acc["qkv_proj"] = acc.get("qkv_proj", 0.0) + sec
        ops["qkv_proj"] = _add(ops.get("qkv_proj"), t, layers, sec)
        nbytes = mla_expand_copy_bytes(self.model, self.attn_tp, kv) * layers
        return layers + self.memory_op(acc, ops, "elementwise", nbytes, 2 * layers, "memory_pointwise")

    def _cp_comm(self, phase: str, q: float, seqs: float, kv: float, attn_layer_s: float, graph: bool) -> float:
        """Exposed communication of one layer under context parallelism (seconds).

        prefill (ring attention): each GPU passes its 1/cp of the KV around the ring, cp − 1 hops,
        overlapped with the attention math, so only the excess shows. decode: the cp partial outputs
        (fp32, with their softmax sums) are gathered."""
        if phase == "prefill":
            shard_bytes = kv / self.cp * self.kv_layer_bytes()
            ring = (self.cp - 1) * transfer_time(shard_bytes, self.gpu.link_bandwidth * 0.8, self.gpu.scaleup_latency_s)
            return max(0.0, ring - attn_layer_s)
        heads = shard(self.model, self.attn_tp).heads
        part = seqs * heads * (self._v_dim() + 1) * 4.0
        return collective_time(self.gpu, "all-gather", part, self.cp, graph)

    def _v_dim(self) -> int:
        m = self.model.mla
        if m is None:
            return self.model.head_dim
        return m.v_head_dim if self.mla_expand is not None else m.kv_lora_rank

    def _parts_of(self, key: tuple) -> tuple[list["Part"], bool]:
        """The memoised parts of a step given as :class:`BatchShape` fields, and whether it runs as a graph."""
        (prefill_tokens, prefill_seqs, prefill_pairs, prefill_kv, decode_seqs, decode_ctx, prefill_pairs_win,
         prefill_kv_win, decode_ctx_win, decode_q) = key
        dec_tokens = decode_seqs * decode_q
        tokens = prefill_tokens + dec_tokens
        if tokens <= 0:
            raise InputError("batch", 0, "a step needs at least one token")
        graph = self.engine.cuda_graphs and prefill_seqs == 0
        cp, dp = self.cp, self.dp
        m = tokens if cp == 1 and dp == 1 else (-(-prefill_tokens // cp) + dec_tokens) / dp
        parts = [self._tokens_part(m, tokens, graph), self._seqs_part((prefill_seqs + dec_tokens) / dp, graph)]
        if self.packed:
            kv = prefill_kv + decode_ctx
            parts.append(self._part(("packed", tokens, kv), lambda: packed_attention(self, tokens, kv)))
            return parts, graph
        s = cp * dp   # prefill: queries split over cp ranks (ring attention) or sequences over dp ranks;
        if prefill_seqs:   # decode: KV split over cp ranks, or sequences over dp ranks
            parts.append(self._attn_part("attention_prefill", "prefill", AttnSums(
                prefill_tokens / s, prefill_seqs / dp, prefill_pairs / s, prefill_kv / dp,
                _or(prefill_pairs_win, prefill_pairs) / s, _or(prefill_kv_win, prefill_kv) / dp)))
        if decode_seqs:
            ctx_w = _or(decode_ctx_win, decode_ctx)
            n, q = decode_seqs, decode_q
            parts.append(self._attn_part("attention_decode", "decode", AttnSums(
                dec_tokens / dp, n / dp, decode_pairs(n, decode_ctx, q) / s, decode_ctx / s,
                decode_pairs(n, ctx_w, q) / s, ctx_w / s), graph))
        return parts, graph

    def _wall(self, gpu_s: float, kernels: int, seqs: int, graph: bool) -> float:
        """Wall seconds: kernels back to back (a small gap each, as in a graph replay), or the host's
        eager launches if those are slower, plus the engine's CPU overhead per step and sequence (or,
        for an engine that prepares the next step while the GPU runs this one, the longer of the two).
        Host cost per eager launch: the engine's own figure, else the GPU profile's measured one."""
        if graph:
            queued = gpu_s + kernels * self.graph_gap
        else:   # launched ahead of the GPU, kernels run back to back (measured: wall = kernel sum)
            per = self.engine.cpu_launch_per_kernel_s or self.eager_gap
            queued = max(gpu_s, kernels * per)
        host = self.engine.cpu_overhead_per_step_s + seqs * self.engine.cpu_overhead_per_seq_s
        return max(queued, host) if self.engine.overlap_host else queued + host

    # ---- public ---------------------------------------------------------------
    @overload
    def price(self, shape: BatchShape, *, exact: bool = False, detail: Literal[False] = False) -> StepCost: ...
    @overload
    def price(self, shape: BatchShape, *, exact: bool = False, detail: Literal[True]) -> StepTime: ...

    def price(self, shape: BatchShape, *, exact: bool = False, detail: bool = False) -> StepCost | StepTime:
        """The price of one step of ``shape`` over all layers and stages, memoised: its wall seconds,
        FLOPs and bytes (:class:`StepCost`), or with ``detail`` the full :class:`StepTime` with the
        breakdown by operation kind. Contexts are rounded by :func:`quantize` (under 0.55%, so that
        steps a few tokens apart share a memo entry) unless ``exact``."""
        key = shape if exact else self._rounded_key(shape)
        return self._detail(key) if detail else self._lookup(key)

    def cost(self, shape: tuple) -> StepCost:
        """:meth:`price` of ``shape`` (a :class:`BatchShape` or a plain tuple of its ten fields in order),
        contexts rounded, without the breakdown: the engine's entry, one call per step."""
        key = self._rounded_key(shape)
        hit = None if key[1] else self._get(key)
        return hit if hit is not None else self._price(key)

    def _lookup(self, key: tuple) -> StepCost:
        """The price of the step with memo key ``key``: from the memo if decode-only, else (or on a
        miss) from its parts."""
        hit = None if key[1] else self.memo.get(key)
        return hit if hit is not None else self._price(key)

    def _price(self, key: tuple) -> StepCost:
        """:meth:`_lookup` of the shape whose fields (and memo key) are ``key``, from its parts; memoised if
        decode-only (99% of those recur; 94% of steps with a prompt chunk do not, 1,000,000 chat requests)."""
        hit = self._memoised_sums(key) if self.lean else None
        if hit is None:
            parts, graph = self._parts_of(key)
            gpu_s, flops, nbytes, kernels = part_sums(parts)
        else:
            gpu_s, flops, nbytes, kernels, graph = hit
        res = StepCost(self._wall(gpu_s, kernels, key[1] + key[4], graph), flops, nbytes)
        return self.memo.put(key, res) if not key[1] else res

    def _detail(self, key: tuple) -> StepTime:
        """The :class:`StepTime` of the step with memo key ``key``, with its breakdown."""
        hit = self.memo.get(("detail", key))
        if hit is not None:
            return hit
        parts, graph = self._parts_of(key)
        st = step_time(parts, lambda gpu_s, kernels: self._wall(gpu_s, kernels, key[1] + key[4], graph))
        return self.memo.put(("detail", key), st)

    def linear_cost(self, rows: float, k: int, n: int, layers: int = 1) -> tuple[float, float, float]:
        """(seconds, FLOPs, bytes) of ``layers`` GEMMs x[rows, k] @ w[k, n] in this replica's weight format,
        each taking at least one kernel (for small extra heads, e.g. Medusa)."""
        sec, t = self._gemm(Gemm("extra", "mlp", k, n, layers), rows)
        return sec, t.flops * layers, t.bytes * layers


def _or(v: float | None, default: float) -> float:
    return default if v is None else v
