"""Collective communication time: alpha-beta model per collective and group size.

Calibrated profiles carry measured (latency, bandwidth) fits per group size, eager and
CUDA-graph. Otherwise the ring formulas apply over the profile's scale-up link: an all-reduce
of N bytes on G GPUs moves 2(G-1)/G * N bytes per GPU in 2(G-1) latency-bound steps; an
all-gather (N bytes out per GPU) moves (G-1)/G * N bytes in G-1 steps.
"""
from __future__ import annotations

from ..catalog.gpu import CollectiveFit, GPUProfile
from ..errors import InputError

COLLECTIVES = ("all-reduce", "all-gather", "all-to-all", "send")
#: Per-step latency of a collective launched eagerly vs replayed inside a CUDA graph (seconds).
EAGER_STEP_LATENCY_S = 8e-6
GRAPH_STEP_LATENCY_S = 3e-6
LINK_EFFICIENCY = 0.8   # achievable fraction of the link's unidirectional datasheet bandwidth


def _fit(gpu: GPUProfile, collective: str, gpus: int, cuda_graph: bool) -> CollectiveFit | None:
    table = gpu.efficiency.collectives_graph if cuda_graph else gpu.efficiency.collectives
    fits = table.get(collective, {})
    if gpus in fits:
        return fits[gpus]
    return None


def ring_factors(collective: str, gpus: int) -> tuple[float, int]:
    """(bytes moved per GPU per message byte, latency-bound steps) of the ring algorithm."""
    g = gpus
    if collective == "all-reduce":
        return 2.0 * (g - 1) / g, 2 * (g - 1)
    if collective == "all-gather":
        return (g - 1) / g, g - 1
    if collective == "all-to-all":
        return (g - 1) / g, 1
    return 1.0, 1


def collective_time(gpu: GPUProfile, collective: str, nbytes: float, gpus: int,
                    cuda_graph: bool = False) -> float:
    """Seconds for one call with an ``nbytes`` message per GPU across ``gpus`` GPUs."""
    if collective not in COLLECTIVES:
        raise InputError("op", collective, f"allowed collectives: {', '.join(COLLECTIVES)}")
    if gpus < 1:
        raise InputError("gpus", gpus, "must be a positive integer")
    if gpus == 1 or nbytes <= 0:
        return 0.0
    fit = _fit(gpu, collective, gpus, cuda_graph)
    if fit is not None:
        return fit.latency_s + nbytes / fit.bandwidth_Bps
    factor, steps = ring_factors(collective, gpus)
    step_lat = GRAPH_STEP_LATENCY_S if cuda_graph else EAGER_STEP_LATENCY_S
    return steps * step_lat + factor * nbytes / (gpu.link_bandwidth * LINK_EFFICIENCY)


def transfer_time(nbytes: float, bandwidth_Bps: float, latency_s: float) -> float:
    """Point-to-point transfer: latency + bytes / bandwidth (seconds)."""
    return latency_s + nbytes / bandwidth_Bps
