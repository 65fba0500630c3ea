"""How the ranks of data-parallel attention move tokens to their experts and back, per MoE layer.

``all-to-all``: each rank sends every token's hidden state, in bf16, to the ranks of its top-k experts,
and the results come back the same way (two all-to-alls; the message is the larger of what a rank sends
and what its busiest experts receive).

``all-gather``: TensorRT-LLM's strategy where no all-to-all kernel applies (its multi-node NVLink
all-to-all needs MNNVL: ``should_enable_alltoall`` / ``CommunicationFactory.create_strategy``,
``tensorrt_llm/_torch/modules/fused_moe/``): every rank all-gathers the hidden states already quantized to
the experts' input format ("post-quant" dispatch: NVFP4 4 bits plus an 8-bit scale per 16 values, fp8 one
byte) with each token's top-k expert ids (int32) and weights (bf16), runs its experts over every rank's
tokens, and a reduce-scatter returns each rank its tokens' sums in bf16
(``communication/allgather_reducescatter.py``). The reduce-scatter is priced as the all-gather of the same
shards: a ring moves the same bytes, and the kernel database's NCCL tables time the two within 2% of each
other at the median (2, 4, 8 GPUs; B200, H200, RTX PRO 6000).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from .comm import collective_time
from .ops import ACT_BYTES, WEIGHT_BYTES

if TYPE_CHECKING:
    from ..catalog.gpu import GPUProfile
    from ..catalog.model import ModelArch

#: Bytes per hidden value of a post-quant dispatch, by the experts' compute dtype (else bf16).
DISPATCH_BYTES = {"fp4": WEIGHT_BYTES["nvfp4"], "fp8": 1.0}
#: Bytes per routed copy of a token's expert id (int32) and weight (bf16).
ROUTE_BYTES = 4 + 2


class Dispatch(NamedTuple):
    """How one replica's attention ranks reach their experts: the engine's method, the model's hidden
    size and experts per token, the bytes per dispatched value, and the ranks."""

    method: str
    hidden: int
    topk: int
    value_bytes: float
    ranks: int


def dispatch_of(method: str, model: "ModelArch", compute_dtype: str, ranks: int) -> Dispatch:
    """The :class:`Dispatch` of a MoE model whose experts compute in ``compute_dtype``."""
    assert model.moe is not None
    value = DISPATCH_BYTES.get(compute_dtype, ACT_BYTES) if method == "all-gather" else ACT_BYTES
    return Dispatch(method, model.hidden_size, model.moe.experts_per_token, value, ranks)


def moe_comm_time(gpu: "GPUProfile", d: Dispatch, share_max: float, m: float, m_all: float, graph: bool) -> float:
    """Seconds one MoE layer spends moving tokens for ``m`` tokens on this rank, ``m_all`` on all ranks;
    ``share_max``: the busiest rank's share of the routed copies."""
    h, k = d.hidden, d.topk
    if d.method == "all-gather":
        rows = m * (h * d.value_bytes + k * ROUTE_BYTES)
        return (collective_time(gpu, "all-gather", rows, d.ranks, graph)
                + collective_time(gpu, "all-gather", m * h * ACT_BYTES, d.ranks, graph))
    send = m * k * h * ACT_BYTES
    recv = m_all * k * share_max * h * ACT_BYTES
    return 2 * collective_time(gpu, "all-to-all", max(send, recv), d.ranks, graph)
