"""What the suite measures: model shapes, shape grids, and FLOP / byte counts (no torch).

Model numbers come from the reference table of public Hugging Face ``config.json`` values
(see ``MODEL_SOURCE``). FLOPs count a multiply-add as 2; bytes are the minimum moved through
device memory (each input read once, each output written once).
"""
from __future__ import annotations

from dataclasses import dataclass, field

MODEL_SOURCE = ("Hugging Face config.json values as tabulated in the project reference "
                "'hardware-models-prices.md' section F (copies in inference-sim/inference-sim @f90a1e3a "
                "2026-08-22, alibaba/InferSim @f2293da 2026-05-08, Lightning-AI/litgpt @26857050 "
                "2026-06-29); table collected 2026-11-22")


@dataclass(frozen=True)
class ModelSpec:
    """Architecture numbers of one decoder model (sizes in elements)."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int              # dense intermediate size, or per-expert size for MoE
    vocab: int
    tied: bool = False
    experts: int = 0      # 0: dense
    topk: int = 0
    source: str = field(default=MODEL_SOURCE, compare=False)


MODELS: dict[str, ModelSpec] = {m.name: m for m in (
    ModelSpec("llama-3.1-8b", 4096, 32, 32, 8, 128, 14336, 128256),
    ModelSpec("llama-3.1-70b", 8192, 80, 64, 8, 128, 28672, 128256),
    ModelSpec("llama-3.2-1b", 2048, 16, 32, 8, 64, 8192, 128256, tied=True),
    ModelSpec("qwen3-8b", 4096, 36, 32, 8, 128, 12288, 151936),
    ModelSpec("qwen3-32b", 5120, 64, 64, 8, 128, 25600, 151936),
    ModelSpec("mixtral-8x7b", 4096, 32, 32, 8, 128, 14336, 32000, experts=8, topk=2),
    ModelSpec("qwen3-30b-a3b", 2048, 48, 32, 4, 128, 768, 151936, experts=128, topk=8),
)}

#: A 2-layer model small enough for the CPU quick check (not a real model).
TINY = ModelSpec("tiny-llama-2l", 256, 2, 4, 2, 64, 512, 1024, tied=True, source="synthetic")

GEMM_MODELS = ("llama-3.1-8b", "llama-3.1-70b", "qwen3-8b", "qwen3-32b", "mixtral-8x7b")
TPS = (1, 2, 4, 8)
M_FULL = tuple(2 ** i for i in range(15))                   # 1 .. 16384 tokens
M_SPARSE = (1, 4, 16, 64, 256, 1024, 4096, 16384)           # every second octave
#: (model, tp) pairs measured over the full M grid; all other shapes use M_SPARSE.
FULL_GRID = (("llama-3.1-8b", 1), ("llama-3.1-70b", 8), ("qwen3-8b", 1), ("llama-3.1-70b", 4))


def kv_heads_per_gpu(spec: ModelSpec, tp: int) -> int:
    """KV heads on one GPU: split when tp divides them, replicated (one per GPU) beyond that."""
    return max(1, spec.kv_heads // tp)


def linear_shapes(spec: ModelSpec, tp: int) -> dict[str, tuple[int, int]]:
    """(K, N) of each weight GEMM of one layer (and lm_head) on one GPU under tensor parallelism tp."""
    h, d = spec.hidden, spec.head_dim
    q_heads = spec.heads // tp
    return {
        "qkv": (h, (q_heads + 2 * kv_heads_per_gpu(spec, tp)) * d),
        "o": (q_heads * d, h),
        "gate_up": (h, 2 * spec.ffn // tp),
        "down": (spec.ffn // tp, h),
        "lm_head": (h, spec.vocab // tp),
    }


@dataclass(frozen=True)
class GemmShape:
    k: int
    n: int
    labels: tuple[str, ...]   # "model:layer:tpN" for every model shape that maps here
    full_grid: bool


def gemm_shapes(models: tuple[str, ...] = GEMM_MODELS, tps: tuple[int, ...] = TPS) -> list[GemmShape]:
    """Deduplicated (K, N) shapes, the full-grid ones first, in model/tp order."""
    labels: dict[tuple[int, int], list[str]] = {}
    full: set[tuple[int, int]] = set()
    order: list[tuple[int, int]] = []
    for name in models:
        spec = MODELS[name]
        for tp in tps:
            if spec.heads % tp:
                continue
            for layer, kn in linear_shapes(spec, tp).items():
                if kn not in labels:
                    labels[kn] = []
                    order.append(kn)
                labels[kn].append(f"{name}:{layer}:tp{tp}")
                if (name, tp) in FULL_GRID:
                    full.add(kn)
    order.sort(key=lambda kn: kn not in full)   # stable: full-grid shapes first
    return [GemmShape(k, n, tuple(labels[(k, n)]), (k, n) in full) for k, n in order]


def gemm_points(quick: bool = False) -> list[tuple[int, int, int, str]]:
    """(M, K, N, labels) in measuring order: full-grid shapes, then the sparse grid."""
    if quick:
        # 8 points: the fewest calibration/fit.py fits a curve to
        return [(m, k, n, "quick") for k, n in ((256, 512), (512, 256)) for m in (1, 16, 64, 128)]
    pts = []
    for s in gemm_shapes():
        for m in (M_FULL if s.full_grid else M_SPARSE):
            pts.append((m, s.k, s.n, ";".join(s.labels)))
    return pts


def gemm_flops(m: int, k: int, n: int) -> float:
    return 2.0 * m * n * k


def gemm_bytes(m: int, k: int, n: int, in_bytes: float, out_bytes: float = 2.0) -> float:
    """x[M,K] and w[K,N] read once, out[M,N] written once."""
    return (m * k + k * n) * in_bytes + m * n * out_bytes


# ---- attention -------------------------------------------------------------------------------
HEAD_CONFIGS = ((32, 8, 128), (64, 8, 128), (32, 32, 128), (16, 2, 128), (32, 4, 128))
PREFILL_BATCH = (1, 4, 16)
PREFILL_SEQ = (128, 512, 1024, 2048, 4096, 8192)
PREFILL_MAX_TOKENS = 65536
CHUNK_NEW = (256, 512, 2048)
CHUNK_PREFIX = (0, 1024, 4096, 16384)
CHUNK_BATCH = (1, 4)
DECODE_BATCH = (1, 8, 32, 64, 128, 256)
DECODE_KV = (128, 512, 1024, 2048, 4096, 8192, 16384, 32768)
DECODE_MAX_KV_BYTES = 8 * 2 ** 30


def causal_pairs(new: int, prefix: int) -> int:
    """(query, key) pairs one sequence computes: new tokens see the prefix and earlier new tokens."""
    return new * prefix + new * (new + 1) // 2


def prefill_flops(batch: int, q_heads: int, head_dim: int, new: int, prefix: int) -> float:
    """QK^T and PV: 2 matmuls x 2 FLOPs per pair per head dimension."""
    return 4.0 * batch * q_heads * head_dim * causal_pairs(new, prefix)


def prefill_bytes(batch: int, q_heads: int, kv_heads: int, head_dim: int, new: int, prefix: int,
                  elem: float = 2.0) -> float:
    """q and out (new tokens), k and v (prefix + new) at ``elem`` bytes each."""
    return elem * batch * head_dim * (2 * q_heads * new + 2 * kv_heads * (prefix + new))


def decode_flops(batch: int, q_heads: int, head_dim: int, kv_len: int) -> float:
    return 4.0 * q_heads * head_dim * kv_len * batch


def decode_bytes(batch: int, q_heads: int, kv_heads: int, head_dim: int, kv_len: int,
                 elem: float = 2.0) -> float:
    """KV read once plus q read and out written (one token per sequence)."""
    return elem * batch * head_dim * (2 * kv_heads * kv_len + 2 * q_heads)


def kv_bytes(batch: int, kv_heads: int, head_dim: int, kv_len: int, elem: float = 2.0) -> float:
    return elem * 2 * batch * kv_heads * head_dim * kv_len


def prefill_points(quick: bool = False) -> list[tuple[str, int, tuple[int, int, int], int, int]]:
    """(op, batch, (q_heads, kv_heads, head_dim), new, prefix): plain causal prefill then chunked."""
    if quick:
        cfg = (4, 2, 64)
        return ([("prefill", 1, cfg, s, 0) for s in (64, 128)]
                + [("chunked_prefill", 1, cfg, 32, p) for p in (64, 128)])
    pts = []
    for cfg in HEAD_CONFIGS:
        for b in PREFILL_BATCH:
            for s in PREFILL_SEQ:
                if b * s <= PREFILL_MAX_TOKENS:
                    pts.append(("prefill", b, cfg, s, 0))
    for cfg in HEAD_CONFIGS:
        for b in CHUNK_BATCH:
            for c in CHUNK_NEW:
                for p in CHUNK_PREFIX:
                    pts.append(("chunked_prefill", b, cfg, c, p))
    return pts


def decode_points(quick: bool = False) -> list[tuple[int, tuple[int, int, int], int]]:
    """(batch, (q_heads, kv_heads, head_dim), kv_len) with the KV cache capped at DECODE_MAX_KV_BYTES."""
    if quick:
        return [(b, (4, 2, 64), L) for b in (1, 4) for L in (128, 512)]
    return [(b, cfg, L) for cfg in HEAD_CONFIGS for b in DECODE_BATCH for L in DECODE_KV
            if kv_bytes(b, cfg[1], cfg[2], L) <= DECODE_MAX_KV_BYTES]


# ---- memory-bound ops ------------------------------------------------------------------------
MEM_SIZES = tuple(2 ** i for i in range(16, 32))     # 64 KiB .. 2 GiB of input
MEM_HIDDEN = 4096


def memory_points(quick: bool = False) -> list[tuple[str, int]]:
    """(op, input bytes) for copy, rmsnorm and silu_mul."""
    sizes = (2 ** 16, 2 ** 20) if quick else MEM_SIZES
    return [(op, s) for op in ("copy", "rmsnorm", "silu_mul") for s in sizes]


def memory_counts(op: str, numel: int, hidden: int, elem: float = 2.0) -> tuple[float, float]:
    """(flops, bytes) of a memory-bound op on ``numel`` input elements (nominal FLOPs per element:
    rmsnorm 4 = square, sum, scale, weight; silu_mul 5 per output = sigmoid ~3, x*sig, *up)."""
    if op == "copy":
        return 0.0, 2 * elem * numel
    if op == "rmsnorm":
        return 4.0 * numel, elem * (2 * numel + hidden)
    if op == "silu_mul":
        return 5.0 * numel / 2, elem * (numel + numel / 2)
    raise ValueError(op)


# ---- collectives -----------------------------------------------------------------------------
COLL_SIZES = tuple(2 ** i for i in range(10, 31))    # 1 KiB .. 1 GiB per GPU


def bus_factor(collective: str, gpus: int) -> float:
    """busbw / algbw as nccl-tests defines it."""
    if collective == "all_reduce":
        return 2.0 * (gpus - 1) / gpus
    if collective == "all_gather":
        return (gpus - 1) / gpus
    raise ValueError(collective)


# ---- whole model -----------------------------------------------------------------------------
WM_PREFILL = tuple((b, s) for b in (1, 4, 16) for s in (128, 512, 2048))
WM_DECODE = tuple((b, c) for b in (1, 8, 32, 128) for c in (128, 1024, 4096))
WM_MODELS = ("llama-3.2-1b", "llama-3.1-8b", "qwen3-8b")
WM_OPTIONAL = ("qwen3-30b-a3b",)        # only on GPUs with >= 100 GiB and time left
WM_OPTIONAL_PREFILL = ((1, 512), (4, 512))
WM_OPTIONAL_DECODE = ((1, 1024), (8, 1024), (32, 1024))
WM_BREAKDOWN = {"prefill": (4, 512), "decode": (32, 1024)}


def model_kv_bytes(spec: ModelSpec, batch: int, context: int, elem: float = 2.0) -> float:
    """Whole-model KV cache bytes for ``batch`` sequences of ``context`` tokens."""
    return spec.layers * kv_bytes(batch, spec.kv_heads, spec.head_dim, context, elem)
