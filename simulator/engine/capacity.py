"""Memory of one replica when serving optimisations change what its GPUs hold.

Without them this is :func:`simulator.perf.memory.memory_plan`. Otherwise, per GPU:
- speculative decoding adds the draft's weights and its KV per token (draft model, EAGLE head) or
  the Medusa heads' weights;
- expert parallelism with data-parallel attention keeps attention, dense layers and embeddings
  whole on every GPU, routed experts split ``ep`` ways, and each GPU's KV serves its own share of
  the sequences (the replica's capacity is ``ep`` times one GPU's);
- context parallelism keeps the weights on every one of the ``cp`` GPU groups and splits each
  sequence's KV over them (capacity ``cp`` times one group's).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..catalog.engine import EngineProfile
from ..catalog.gpu import GPUProfile
from ..catalog.model import ModelArch
from ..errors import DoesNotFitError
from ..perf.memory import (GIB, MemoryPlan, activation_reserve_bytes, kv_bytes_per_token_per_gpu, memory_plan,
                           param_count, weight_bytes_per_gpu)
from ..perf.ops import WEIGHT_BYTES, ExpertPlan, layer_gemms

_COUNT = EngineProfile(name="count", description="unfused inventory for counting", fused_qkv=False,
                       fused_gate_up=False)


@dataclass(frozen=True)
class Extra:
    """Something else a replica's GPUs hold: bytes of weights and KV bytes per token, per GPU."""

    weight_bytes: float = 0.0
    kv_bytes_per_token: float = 0.0


def routed_expert_elements(model: ModelArch) -> float:
    """Weight elements of all routed experts (0 for a dense model)."""
    return float(sum(g.weight_elements for g in layer_gemms(model, 1, _COUNT) if g.experts > 1))


def extra_for_model(model: ModelArch, weight_dtype: str, kv_dtype: str, tp: int, share_embedding: bool) -> Extra:
    """Weights and KV per token of an additional model (a draft, an EAGLE head) on ``tp`` GPUs."""
    w = weight_bytes_per_gpu(model, weight_dtype, tp, 1)
    if share_embedding:
        w -= param_count(model).embedding * 2.0 / tp
    return Extra(w, kv_bytes_per_token_per_gpu(model, kv_dtype, tp, 1))


def replica_memory(model: ModelArch, gpu: GPUProfile, weight_dtype: str, kv_dtype: str, tp: int = 1, pp: int = 1,
                   *, gpu_memory_utilization: float = 0.9, max_batched_tokens: int = 8192,
                   experts: ExpertPlan | None = None, cp: int = 1, extra: Extra | None = None) -> MemoryPlan:
    """KV capacity of a replica with the features above; raises :class:`DoesNotFitError` when full."""
    dp = experts.ep if experts is not None and experts.dp_attention else 1
    if dp == 1 and cp == 1 and extra is None:
        return memory_plan(model, gpu, weight_dtype, kv_dtype, tp, pp, gpu_memory_utilization=gpu_memory_utilization,
                           max_batched_tokens=max_batched_tokens)
    extra = extra or Extra()
    usable = gpu.memory_bytes * gpu_memory_utilization
    attn_tp = 1 if dp > 1 else tp
    if dp > 1:
        pc = param_count(model)
        routed = routed_expert_elements(model)
        wb = WEIGHT_BYTES[weight_dtype]
        w = ((pc.total - pc.embedding - routed) * wb + pc.embedding * 2.0 + routed * wb / dp) / pp
    else:
        w = weight_bytes_per_gpu(model, weight_dtype, tp, pp)
    w += extra.weight_bytes
    act = activation_reserve_bytes(model, attn_tp, max_batched_tokens)
    kv = usable - w - act
    per_tok = kv_bytes_per_token_per_gpu(model, kv_dtype, attn_tp, pp) + extra.kv_bytes_per_token
    if kv < per_tok * 16:
        raise DoesNotFitError(
            f"model: {model.name} does not fit: {w / GIB:.1f} GiB of weights (with draft or heads) + "
            f"{act / GIB:.1f} GiB activations per GPU, but {gpu.name} at tp={tp} pp={pp} offers "
            f"{usable / GIB:.1f} GiB; raise tp/pp, use a smaller weight_dtype or a larger GPU")
    return MemoryPlan(gpu.memory_bytes, usable, w, act, kv, per_tok, int(kv // per_tok) * dp * cp)
