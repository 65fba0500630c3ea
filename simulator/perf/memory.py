"""Parameter counts, weight bytes, and KV-cache capacity of a deployment."""
from __future__ import annotations

from dataclasses import dataclass

from ..catalog.engine import EngineProfile
from ..catalog.gpu import GPUProfile
from ..catalog.model import ModelArch, dtype_bytes
from ..errors import DoesNotFitError
from .ops import WEIGHT_BYTES, layer_gemms, shard

_UNFUSED = EngineProfile(name="_count", description="unfused inventory for counting",
                         fused_qkv=False, fused_gate_up=False)
GIB = float(2**30)


@dataclass(frozen=True)
class ParamCount:
    """Parameters (elements): ``total`` stored, ``active`` used per token (MoE: top-k + shared)."""

    total: float
    active: float
    embedding: float


def _bias_elements(model: ModelArch) -> tuple[float, float]:
    """(total, active) bias elements over all layers."""
    total = active = 0.0
    for g in layer_gemms(model, 1, _UNFUSED):
        if g.bias:
            total += g.n * g.experts * g.layers
            active += g.n * min(g.experts, g.topk) * g.layers
    return total, active


def param_count(model: ModelArch) -> ParamCount:
    """Parameters from the architecture: GEMM weights + biases + embeddings + norms."""
    total = active = 0.0
    for g in layer_gemms(model, 1, _UNFUSED):
        if g.kind == "lm_head":
            continue
        total += g.weight_elements
        active += g.k * g.n * min(g.experts, g.topk) * g.layers
    bt, ba = _bias_elements(model)
    h = model.hidden_size
    norms = (2 * model.num_layers + 1) * h
    if model.qk_norm:
        norms += 2 * model.head_dim * model.num_layers
    if model.mla is not None:
        norms += ((model.mla.q_lora_rank or 0) + model.mla.kv_lora_rank) * model.num_layers
    emb = model.vocab_size * h * (1 if model.tie_word_embeddings else 2)
    return ParamCount(total=total + bt + norms + emb, active=active + ba + norms + emb, embedding=emb)


def weight_bytes_per_gpu(model: ModelArch, weight_dtype: str, tp: int = 1, pp: int = 1) -> float:
    """Bytes of weights one GPU holds; embeddings and norms stay in 16-bit."""
    shard(model, tp)
    pc = param_count(model)
    wb = WEIGHT_BYTES[weight_dtype]
    body = (pc.total - pc.embedding) * wb
    return (body + pc.embedding * 2.0) / (tp * pp)


def kv_bytes_per_token_per_gpu(model: ModelArch, kv_dtype: str, tp: int = 1, pp: int = 1) -> float:
    """KV-cache bytes one token occupies on one GPU (KV heads split over TP, layers over PP)."""
    s = shard(model, tp)
    if model.mla is not None:   # the latent is replicated on every TP rank
        per_layer = model.kv_elements_per_token_per_layer()
    else:
        per_layer = 2 * s.kv_heads * model.head_dim
    layers = -(-model.num_layers // pp)
    return per_layer * layers * dtype_bytes(kv_dtype)


def activation_reserve_bytes(model: ModelArch, tp: int, max_batched_tokens: int) -> float:
    """Peak activation workspace per GPU for a step of ``max_batched_tokens`` tokens, plus a
    fixed 1 GiB for the CUDA context, CUDA graphs and allocator slack (vLLM-style profiling)."""
    ffn = model.dense_ffn_size if model.moe is None else model.moe.expert_intermediate_size * model.moe.experts_per_token
    per_token = (4 * model.hidden_size + 3 * ffn / tp) * 2.0
    logits = min(max_batched_tokens, 256) * model.vocab_size / tp * 4.0
    return GIB + max_batched_tokens * per_token + logits


@dataclass(frozen=True)
class MemoryPlan:
    """Memory of one replica, per GPU (bytes) and as KV-cache token capacity."""

    gpu_bytes: float
    usable_bytes: float
    weight_bytes: float
    activation_bytes: float
    kv_bytes: float
    kv_bytes_per_token: float
    kv_tokens: int

    def blocks(self, block_size: int) -> int:
        """Whole KV blocks of ``block_size`` tokens that fit."""
        return self.kv_tokens // block_size


def memory_plan(model: ModelArch, gpu: GPUProfile, weight_dtype: str, kv_dtype: str, tp: int = 1,
                pp: int = 1, *, gpu_memory_utilization: float = 0.9,
                max_batched_tokens: int = 8192) -> MemoryPlan:
    """KV capacity of a replica; raises :class:`DoesNotFitError` when weights leave no room."""
    usable = gpu.memory_bytes * gpu_memory_utilization
    w = weight_bytes_per_gpu(model, weight_dtype, tp, pp)
    act = activation_reserve_bytes(model, tp, max_batched_tokens)
    kv = usable - w - act
    per_tok = kv_bytes_per_token_per_gpu(model, kv_dtype, tp, pp)
    if kv < per_tok * 16:
        need = (w + act) / GIB
        raise DoesNotFitError(
            f"model: {model.name} does not fit: {w / GIB:.1f} GiB of {weight_dtype} weights + "
            f"{act / GIB:.1f} GiB activations per GPU need {need:.1f} GiB, but {gpu.name} at "
            f"tp={tp} pp={pp} offers {usable / GIB:.1f} GiB ({gpu_memory_utilization:.0%} of "
            f"{gpu.memory_gb.value:g} GB); raise tp/pp, use a smaller weight_dtype or a larger GPU")
    return MemoryPlan(gpu.memory_bytes, usable, w, act, kv, per_tok, int(kv // per_tok))
