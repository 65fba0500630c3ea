"""Collective communication time: alpha-beta model per collective and group size.

Message size N is the bytes each GPU contributes: the all-reduce buffer, one GPU's all-gather
shard. Profiles carry (latency, bandwidth) fits per group size, eager and CUDA-graph: t = latency
+ N / bandwidth. Without a fit the ring formulas apply over the profile's scale-up link: an
all-reduce moves 2(G-1)/G * N bytes per GPU, an all-gather (G-1) * N, an all-to-all (G-1)/G * N;
latency grows by 1.5 us per GPU beyond the first, as NCCL's small-message times do.

A profile may carry several fits for one group size, by message size (``max_bytes`` ascending, the
last unbounded): the kernel database's NCCL timings, fitted per range of message sizes.

An engine's own kernels come first where the profile carries them (``engine_collectives``, set by a
kernel overlay: vLLM's, SGLang's and TensorRT-LLM's custom all-reduce): a message of at most the
fit's ``max_bytes`` (the kernel's buffer) runs on it, a larger one falls back to NCCL, as the
engines dispatch it.
"""
from __future__ import annotations

from ..catalog.gpu import CollectiveFit, GPUProfile
from ..errors import InputError

COLLECTIVES = ("all-reduce", "all-gather", "all-to-all", "send")
#: Small-message latency of a collective on 2 GPUs, launched eagerly vs replayed in a CUDA graph
#: (seconds), and its growth per extra GPU.
EAGER_LATENCY_S = 9.5e-6
GRAPH_LATENCY_S = 4.5e-6
LATENCY_PER_GPU_S = 1.5e-6
LINK_EFFICIENCY = 0.8   # achievable fraction of the link's unidirectional datasheet bandwidth


def _fit(gpu: GPUProfile, collective: str, nbytes: float, gpus: int, cuda_graph: bool) -> CollectiveFit | None:
    eff = gpu.efficiency
    own = (eff.engine_collectives_graph if cuda_graph else eff.engine_collectives).get(collective, {}).get(gpus)
    if own is not None and (own.max_bytes is None or nbytes <= own.max_bytes):
        return own
    table = eff.collectives_graph if cuda_graph else eff.collectives
    fit = table.get(collective, {}).get(gpus)
    if isinstance(fit, list):   # fits by message size: the first whose range holds the message
        return next(f for f in fit if f.max_bytes is None or nbytes <= f.max_bytes)
    return fit


def ring_factor(collective: str, gpus: int) -> float:
    """Bytes each GPU sends per byte of its message, ring algorithm."""
    g = gpus
    if collective == "all-reduce":
        return 2.0 * (g - 1) / g
    if collective == "all-gather":
        return float(g - 1)
    if collective == "all-to-all":
        return (g - 1) / g
    return 1.0


def collective_time(gpu: GPUProfile, collective: str, nbytes: float, gpus: int,
                    cuda_graph: bool = False) -> float:
    """Seconds for one call with an ``nbytes`` message per GPU across ``gpus`` GPUs."""
    if collective not in COLLECTIVES:
        raise InputError("op", collective, f"allowed collectives: {', '.join(COLLECTIVES)}")
    if gpus < 1:
        raise InputError("gpus", gpus, "must be a positive integer")
    if gpus == 1 or nbytes <= 0:
        return 0.0
    fit = _fit(gpu, collective, nbytes, gpus, cuda_graph)
    if fit is not None:
        return fit.latency_s + nbytes / fit.bandwidth_Bps
    base = GRAPH_LATENCY_S if cuda_graph else EAGER_LATENCY_S
    latency = base + LATENCY_PER_GPU_S * (gpus - 2)
    return latency + ring_factor(collective, gpus) * nbytes / (gpu.link_bandwidth * LINK_EFFICIENCY)


def transfer_time(nbytes: float, bandwidth_Bps: float, latency_s: float) -> float:
    """Point-to-point transfer: latency + bytes / bandwidth (seconds)."""
    return latency_s + nbytes / bandwidth_Bps
