"""Time of one forward step of a batch: sum of per-operation rooflines, plus communication,
launch gaps and the engine's CPU overhead. Memoised: the engine calls this for every step.

A step depends on its batch only through :class:`BatchShape` (token counts and summed
context lengths), so callers compute those with numpy and ask once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..catalog.engine import EngineProfile
from ..catalog.gpu import GPUProfile
from ..catalog.model import ModelArch, dtype_bytes
from ..errors import InputError
from .comm import collective_time, transfer_time
from .ops import (ACT_BYTES, COMPUTE_DTYPE, WEIGHT_BYTES, attention_cost, elementwise_bytes_per_token,
                  expected_active_experts, gemm_cost, layer_gemms, shard)
from .roofline import OpTime, log2, op_time

WEIGHT_DTYPES = tuple(k for k in WEIGHT_BYTES if k not in ("fp32", "fp4"))
KV_DTYPES = ("bf16", "fp16", "fp8")


@dataclass(frozen=True)
class BatchShape:
    """What a step's time depends on. Sums run over the sequences of the batch.

    prefill: ``prefill_tokens`` new tokens from ``prefill_seqs`` sequences; ``prefill_pairs`` causal
    query-key pairs (c·p + c(c+1)/2 for a chunk of c tokens after a prefix of p); ``prefill_kv``
    KV entries read (p + c). decode: ``decode_seqs`` sequences with ``decode_ctx`` summed context.
    ``*_win`` are the same sums with each sequence's context capped at the sliding window
    (equal to the full sums for models without sliding-window layers).
    """

    prefill_tokens: int = 0
    prefill_seqs: int = 0
    prefill_pairs: float = 0.0
    prefill_kv: float = 0.0
    decode_seqs: int = 0
    decode_ctx: float = 0.0
    prefill_pairs_win: float | None = None
    prefill_kv_win: float | None = None
    decode_ctx_win: float | None = None

    @property
    def tokens(self) -> int:
        return self.prefill_tokens + self.decode_seqs

    @property
    def seqs(self) -> int:
        return self.prefill_seqs + self.decode_seqs

    @staticmethod
    def prefill(batch: int, seq: int, prefix: int = 0, window: int | None = None) -> "BatchShape":
        """``batch`` sequences each prefilling ``seq`` new tokens after ``prefix`` cached ones."""
        pairs = seq * prefix + seq * (seq + 1) / 2
        win = window_pairs(seq, prefix, window) if window else pairs
        kv_win = min(prefix + seq, window + seq) if window else prefix + seq
        return BatchShape(prefill_tokens=batch * seq, prefill_seqs=batch, prefill_pairs=batch * pairs,
                          prefill_kv=batch * (prefix + seq), prefill_pairs_win=batch * win,
                          prefill_kv_win=batch * kv_win)

    @staticmethod
    def decode(batch: int, context: int, window: int | None = None) -> "BatchShape":
        """``batch`` sequences each decoding one token against ``context`` cached tokens."""
        ctx = context + 1  # the new token attends to itself too
        win = min(ctx, window) if window else ctx
        return BatchShape(decode_seqs=batch, decode_ctx=batch * ctx, decode_ctx_win=batch * win)


def window_pairs(c: int, p: int, w: int) -> float:
    """Query-key pairs of a causal chunk of c tokens after p, each query seeing at most w keys."""
    total = 0.0
    lo = p + 1          # query i (1..c) sees p + i keys, capped at w
    full = max(0, min(c, w - p))                   # queries below the cap
    total += full * lo + full * (full - 1) / 2 if full > 0 else 0.0
    total += (c - max(full, 0)) * w
    return total


@dataclass
class StepTime:
    """Predicted step: GPU kernel time, wall time, and the breakdown by operation kind (seconds)."""

    gpu_s: float
    wall_s: float
    kernels: int
    flops: float
    bytes: float
    breakdown: dict[str, float] = field(default_factory=dict)
    bound: dict[str, str] = field(default_factory=dict)


class StepModel:
    """Step-time predictor for one replica: model × GPU × engine × parallelism × precision."""

    def __init__(self, model: ModelArch, gpu: GPUProfile, engine: EngineProfile, tp: int = 1,
                 pp: int = 1, weight_dtype: str = "bf16", kv_dtype: str = "bf16") -> None:
        if weight_dtype not in WEIGHT_DTYPES:
            raise InputError("weight_dtype", weight_dtype, f"allowed: {', '.join(WEIGHT_DTYPES)}")
        if kv_dtype not in KV_DTYPES:
            raise InputError("kv_dtype", kv_dtype, f"allowed: {', '.join(KV_DTYPES)}")
        cdt = COMPUTE_DTYPE[weight_dtype]
        if not gpu.has_dtype(cdt):
            ok = [d for d in WEIGHT_DTYPES if gpu.has_dtype(COMPUTE_DTYPE[d])]
            raise InputError("weight_dtype", weight_dtype,
                             f"{gpu.name} has no {cdt} tensor cores; allowed on it: {', '.join(ok)}")
        if pp < 1 or pp > model.num_layers:
            raise InputError("pp", pp, f"must be between 1 and {model.name}'s {model.num_layers} layers")
        shard(model, tp)
        self.model, self.gpu, self.engine = model, gpu, engine
        self.tp, self.pp, self.weight_dtype, self.kv_dtype = tp, pp, weight_dtype, kv_dtype
        self.compute_dtype = cdt
        self.act_dtype = "bf16" if gpu.has_dtype("bf16") else next(iter(gpu.dense_tflops))
        self.gemms = layer_gemms(model, tp, engine)
        self.elem_bytes, self.elem_kernels = elementwise_bytes_per_token(model, tp, engine)
        self.swa_layers = model.sliding_window_layers if model.sliding_window else 0
        self.graph_gap = gpu.efficiency.graph_launch_overhead_s
        self.eager_gap = gpu.efficiency.launch_overhead_s
        self._memo: dict[tuple, Part] = {}
        self._full: dict[tuple, StepTime] = {}
        self._costs: dict[tuple, tuple[float, float, float]] = {}

    # ---- parts: each memoised on the few numbers it depends on -------------------------
    def _part(self, key: tuple, build) -> "Part":  # noqa: ANN001
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) > 400_000:
                self._memo.clear()
            hit = self._memo[key] = Part.of(*build())
        return hit

    def _gemm(self, g, rows: float) -> tuple[float, OpTime]:  # noqa: ANN001
        wb = WEIGHT_BYTES[self.weight_dtype]
        dt = self.act_dtype if g.kind in ("router", "lm_head") else self.compute_dtype
        gw = 2.0 if g.kind in ("router", "lm_head") else wb
        if g.experts > 1:
            active = expected_active_experts(rows, g.experts, g.topk)
            routed = rows * g.topk
            fl, by = gemm_cost(routed, g.k, g.n, 0.0)
            by += active * g.k * g.n * gw
            t = op_time(self.gpu, "gemm", fl, by, dt, log2(routed / active), log2(g.k * g.n))
        else:
            fl, by = gemm_cost(rows, g.k, g.n, gw)
            t = op_time(self.gpu, "gemm", fl, by, dt, log2(rows), log2(g.k * g.n))
        return max(t.seconds, self.gpu.efficiency.min_kernel_s) * g.layers, t

    def _memory_op(self, acc: dict, ops: dict, kind: str, nbytes: float, kernels: int) -> int:
        if kernels <= 0:
            return 0
        t = op_time(self.gpu, "memory", 0.0, nbytes, self.act_dtype, log2(nbytes / kernels))
        sec = max(t.seconds, self.gpu.efficiency.min_kernel_s * kernels)
        acc[kind] = acc.get(kind, 0.0) + sec
        ops[kind] = _add(ops.get(kind), t, 1, sec)
        return kernels

    def _tokens_part(self, m: int, graph: bool) -> "Part":
        """Everything that scales with the step's token count: weight GEMMs, norms, KV writes, TP comm."""
        def build():  # noqa: ANN202
            acc: dict[str, float] = {}
            ops: dict[str, OpTime] = {}
            kernels = 0
            for g in self.gemms:
                if g.kind == "lm_head":
                    continue
                sec, t = self._gemm(g, m)
                acc[g.kind] = acc.get(g.kind, 0.0) + sec
                ops[g.kind] = _add(ops.get(g.kind), t, g.layers, sec)
                kernels += g.layers
            L = self.model.num_layers
            kernels += self._memory_op(acc, ops, "elementwise", self.elem_bytes * m * L, self.elem_kernels * L)
            if self.engine.kv_cache == "paged":
                kernels += self._memory_op(acc, ops, "kv_cache", 2.0 * m * self._kv_layer_bytes() * L, L)
            kernels += self._memory_op(acc, ops, "embedding", 2.0 * m * self.model.hidden_size * ACT_BYTES, 1)
            act = m * self.model.hidden_size * ACT_BYTES
            comm = 0.0
            if self.tp > 1:
                comm += collective_time(self.gpu, "all-reduce", act, self.tp, graph) * (2 * L + 1)
            if self.pp > 1:
                comm += (self.pp - 1) * transfer_time(act, self.gpu.link_bandwidth * 0.8, self.gpu.scaleup_latency_s)
            if comm:
                acc["communication"] = comm
            return acc, ops, kernels
        return self._part(("t", m, graph), build)

    def _seqs_part(self, seqs: int, graph: bool) -> "Part":
        """Per-sequence work: LM head on the last token, sampling, logits gather."""
        def build():  # noqa: ANN202
            acc: dict[str, float] = {}
            ops: dict[str, OpTime] = {}
            kernels = 0
            for g in self.gemms:
                if g.kind == "lm_head":
                    sec, t = self._gemm(g, seqs)
                    acc["lm_head"], ops["lm_head"] = sec, _add(None, t, 1, sec)
                    kernels += 1
            vocab = self.model.vocab_size / self.tp
            samp = seqs * vocab * (4.0 if self.engine.logits_fp32 else ACT_BYTES) * 3
            kernels += self._memory_op(acc, ops, "sampling", samp, 4)
            if self.tp > 1:
                acc["communication"] = collective_time(self.gpu, "all-gather", seqs * vocab * 4.0, self.tp, graph)
            return acc, ops, kernels
        return self._part(("s", seqs, graph), build)

    def _kv_layer_bytes(self) -> float:
        kvb = self.model.kv_elements_per_token_per_layer() * dtype_bytes(self.kv_dtype)
        if self.model.mla is None:
            kvb = kvb * shard(self.model, self.tp).kv_heads / self.model.num_kv_heads
        return kvb

    def _attn_part(self, kind: str, phase: str, q: float, seqs: int, pairs: float, kv: float,
                   pairs_w: float, kv_w: float) -> "Part":
        """Attention of all layers (full and sliding-window ones) for one phase."""
        def build():  # noqa: ANN202
            L, W = self.model.num_layers, self.swa_layers
            ops: dict[str, OpTime] = {}
            total, kernels = 0.0, 0
            for layers, pr, kvv in ((L - W, pairs, kv), (W, pairs_w, kv_w)):
                if layers <= 0:
                    continue
                fl, by = attention_cost(self.model, self.tp, phase, pr, q, kvv, self.kv_dtype)
                x = log2(q / seqs) if phase == "prefill" else log2(seqs)
                t = op_time(self.gpu, kind, fl, by, self.act_dtype, x, log2(kvv / seqs))
                sec = max(t.seconds, self.gpu.efficiency.min_kernel_s) * layers
                total += sec
                ops[kind] = _add(ops.get(kind), t, layers, sec)
                kernels += layers
            acc = {kind: total}
            if self.engine.kv_cache == "dynamic":  # torch.cat of K and V: read the old cache, write it all
                moved = 2.0 * kv * self._kv_layer_bytes() * L
                kernels += self._memory_op(acc, ops, "kv_cache", moved, 2 * L)
            return acc, ops, kernels
        return self._part((kind, q, seqs, pairs, kv, pairs_w, kv_w), build)

    def _parts(self, b: BatchShape) -> tuple[list["Part"], bool]:
        if b.tokens <= 0:
            raise InputError("batch", 0, "a step needs at least one token")
        graph = self.engine.cuda_graphs and b.prefill_seqs == 0
        parts = [self._tokens_part(b.tokens, graph), self._seqs_part(b.seqs, graph)]
        if b.prefill_seqs:
            parts.append(self._attn_part("attention_prefill", "prefill", b.prefill_tokens, b.prefill_seqs,
                                         b.prefill_pairs, b.prefill_kv, _or(b.prefill_pairs_win, b.prefill_pairs),
                                         _or(b.prefill_kv_win, b.prefill_kv)))
        if b.decode_seqs:
            ctx_w = _or(b.decode_ctx_win, b.decode_ctx)
            parts.append(self._attn_part("attention_decode", "decode", b.decode_seqs, b.decode_seqs,
                                         b.decode_ctx, b.decode_ctx, ctx_w, ctx_w))
        return parts, graph

    def _wall(self, gpu_s: float, kernels: int, seqs: int, graph: bool) -> float:
        gap = self.graph_gap if graph else self.eager_gap
        host = 0.0 if graph else kernels * self.engine.cpu_launch_per_kernel_s
        return max(gpu_s + kernels * gap, host) + self.engine.cpu_overhead_per_step_s \
            + seqs * self.engine.cpu_overhead_per_seq_s

    # ---- public ---------------------------------------------------------------
    def cost(self, b: BatchShape) -> tuple[float, float, float]:
        """(wall seconds, FLOPs, bytes) of one step: the engine's fast path, same numbers as :meth:`time`."""
        key = (b.prefill_tokens, b.prefill_seqs, b.prefill_pairs, b.prefill_kv, b.decode_seqs, b.decode_ctx,
               b.prefill_pairs_win, b.prefill_kv_win, b.decode_ctx_win)
        hit = self._costs.get(key)
        if hit is not None:
            return hit
        parts, graph = self._parts(b)
        gpu_s = flops = nbytes = 0.0
        kernels = 0
        for p in parts:
            gpu_s += p.seconds
            flops += p.flops
            nbytes += p.bytes
            kernels += p.kernels
        res = (self._wall(gpu_s, kernels, b.seqs, graph), flops, nbytes)
        if len(self._costs) > 400_000:
            self._costs.clear()
        self._costs[key] = res
        return res

    def time(self, b: BatchShape) -> StepTime:
        """Predicted time of one forward step over all layers and stages, with its breakdown."""
        key = (b.prefill_tokens, b.prefill_seqs, b.prefill_pairs, b.prefill_kv, b.decode_seqs, b.decode_ctx,
               b.prefill_pairs_win, b.prefill_kv_win, b.decode_ctx_win)
        hit = self._full.get(key)
        if hit is not None:
            return hit
        parts, graph = self._parts(b)
        breakdown: dict[str, float] = {}
        ops: dict[str, OpTime] = {}
        for p in parts:
            for k, v in p.breakdown.items():
                breakdown[k] = breakdown.get(k, 0.0) + v
            for k, o in p.ops.items():
                ops[k] = _add(ops.get(k), o, 1, o.seconds) if k not in ops else _merge(ops[k], o)
        kernels = sum(p.kernels for p in parts)
        gpu_s = sum(breakdown.values())
        st = StepTime(gpu_s=gpu_s, wall_s=self._wall(gpu_s, kernels, b.seqs, graph), kernels=kernels,
                      flops=sum(p.flops for p in parts), bytes=sum(p.bytes for p in parts),
                      breakdown=breakdown, bound={k: o.bound for k, o in ops.items()})
        if "communication" in breakdown:
            st.bound["communication"] = "communication"
        if len(self._full) > 100_000:
            self._full.clear()
        self._full[key] = st
        return st

    def step_seconds(self, b: BatchShape) -> float:
        """Wall seconds of a step, memoised on the shape rounded by :func:`quantize`."""
        return self.cost(quantize(b))[0]


@dataclass(frozen=True)
class Part:
    """A memoised piece of a step: seconds per kind, op details, kernels, and their totals."""

    breakdown: dict[str, float]
    ops: dict[str, OpTime]
    kernels: int
    seconds: float
    flops: float
    bytes: float

    @staticmethod
    def of(breakdown: dict[str, float], ops: dict[str, OpTime], kernels: int) -> "Part":
        return Part(breakdown, ops, kernels, sum(breakdown.values()),
                    sum(o.flops for o in ops.values()), sum(o.bytes for o in ops.values()))


def quantize(b: BatchShape) -> BatchShape:
    """The shape with its context sums rounded to 64 steps per octave (under 0.55% change),
    so that memoisation hits across steps whose contexts differ by a few tokens."""
    return BatchShape(b.prefill_tokens, b.prefill_seqs, _q(b.prefill_pairs), _q(b.prefill_kv),
                      b.decode_seqs, _q(b.decode_ctx), _q(b.prefill_pairs_win), _q(b.prefill_kv_win),
                      _q(b.decode_ctx_win))


def _or(v: float | None, default: float) -> float:
    return default if v is None else v


def _q(v: float | None) -> float | None:
    """Round to 64 steps per octave (relative error under 0.55%)."""
    if v is None or v <= 64:
        return v
    return _POW[round(_log2(v) * 64)]


_log2 = math.log2
_POW = [2.0 ** (e / 64) for e in range(64 * 64)]


def _merge(a: OpTime, b: OpTime) -> OpTime:
    return OpTime(a.seconds + b.seconds, a.flops + b.flops, a.bytes + b.bytes, a.compute_s + b.compute_s,
                  a.memory_s + b.memory_s)


def _add(acc: OpTime | None, t: OpTime, times: int, sec: float) -> OpTime:
    f, by, c, mm = t.flops * times, t.bytes * times, t.compute_s * times, t.memory_s * times
    if acc is None:
        return OpTime(sec, f, by, c, mm)
    return OpTime(acc.seconds + sec, acc.flops + f, acc.bytes + by, acc.compute_s + c, acc.memory_s + mm)
