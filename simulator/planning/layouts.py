"""Planner candidates beyond one colocated replica: prefill/decode pools, and wide expert parallelism.

* :class:`DisaggCandidate` — a prefill pool and a decode pool (GPU type, TP and replicas each) joined
  by a KV link (``deployment.disaggregation``, simulated by ``engine/system.py``). Its search unit is
  ``prefill_replicas`` + ``decode_replicas`` replicas in the ratio that matches the pools' throughput
  bounds (:func:`unit_ratio`); after the bisection finds the unit's highest feasible rate, the whole
  deployment's pools are sized for the target rate and verified by simulation (:mod:`.pools`).
  The two pools may be on different GPU types (:mod:`.mixed` pairs pools that passed their own
  screening); both run the deployment's weight and KV dtypes.
* :class:`EPCandidate` — an MoE model's experts spread over the replica's TP GPUs with data-parallel
  attention (``deployment.moe: {expert_parallel: tp, attention: dp}``); searched like any replica.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

from .candidates import Candidate, Space

#: Largest prefill or decode replica count of one search unit (the ratio is at most 4:1).
MAX_UNIT_REPLICAS = 4
#: Default KV link per prefill replica, GB/s: one 400 Gb/s NIC (ConnectX-7 class), as in
#: examples/feature-disaggregation.yaml (``Space.link_gbps``, ``--link-gbps``).
DEFAULT_LINK_GBPS = Space.link_gbps
DEFAULT_LINK_LATENCY_S = 2e-5


@dataclass(frozen=True)
class DisaggCandidate(Candidate):
    """Prefill and decode pools; ``gpu``/``tp`` are the decode pool's, ``prefill_*`` the prefill pool's.

    ``prefill_replicas`` and ``decode_replicas`` are the search unit's (set by screening to match
    the pools' bounds) or, in a plan's row, the whole deployment's.
    """

    prefill_gpu: str = ""
    prefill_tp: int = 1
    prefill_replicas: int = 1
    decode_replicas: int = 1
    link_gbps: float = DEFAULT_LINK_GBPS
    kind: str = "disaggregated"

    @property
    def gpus(self) -> int:
        return self.pool_gpus(self.prefill_replicas, self.decode_replicas)

    def pool_gpus(self, prefill: int, decode: int) -> int:
        return (prefill * self.prefill_tp + decode * self.tp) * self.pp

    def gpu_counts(self) -> dict[str, int]:
        pre, dec = self.prefill_gpu or self.gpu, self.gpu
        counts = {pre: self.prefill_replicas * self.prefill_tp * self.pp}
        counts[dec] = counts.get(dec, 0) + self.decode_replicas * self.tp * self.pp
        return counts

    def sized(self, prefill: int, decode: int) -> DisaggCandidate:
        """The same pools with ``prefill`` and ``decode`` replicas."""
        return dataclasses.replace(self, prefill_replicas=prefill, decode_replicas=decode)

    def pools(self, prefill: int, decode: int) -> dict[str, Any]:
        """The ``deployment.disaggregation`` mapping for these replica counts."""
        batching = {"max_batch_size": self.max_batch_size, "max_batched_tokens": self.max_batched_tokens}
        return {"prefill": {"gpu": self.prefill_gpu or self.gpu, "tp": self.prefill_tp, "replicas": prefill,
                            "batching": batching},
                "decode": {"replicas": decode, "batching": batching},
                "link": {"bandwidth_gbps": self.link_gbps, "latency_s": DEFAULT_LINK_LATENCY_S}}

    def overrides(self) -> dict[str, Any]:
        return super().overrides() | {"deployment.disaggregation": self.pools(self.prefill_replicas,
                                                                                self.decode_replicas)}

    def deployment(self) -> dict[str, Any]:
        return super().deployment() | {
            "prefill": {"gpu": self.prefill_gpu or self.gpu, "tp": self.prefill_tp, "replicas": self.prefill_replicas},
            "decode": {"gpu": self.gpu, "tp": self.tp, "replicas": self.decode_replicas},
            "link_gbps": self.link_gbps}

    def label(self) -> str:
        return (f"{self.prefill_replicas}P {self.prefill_gpu or self.gpu} tp{self.prefill_tp} + "
                f"{self.decode_replicas}D {self.gpu} tp{self.tp} {self.weight_dtype} "
                f"b{self.max_batch_size}/t{self.max_batched_tokens}")


@dataclass(frozen=True)
class EPCandidate(Candidate):
    """One replica of an MoE model with expert parallelism over its TP GPUs and data-parallel attention."""

    kind: str = "aggregated"

    def overrides(self) -> dict[str, Any]:
        return super().overrides() | {"deployment.moe.expert_parallel": self.tp, "deployment.moe.attention": "dp"}

    def deployment(self) -> dict[str, Any]:
        return super().deployment() | {"expert_parallel": self.tp, "attention": "dp"}

    def label(self) -> str:
        return super().label() + f" ep{self.tp} dp-attn"


def _gpus(space: Space, default: list[str]) -> list[str]:
    return list(space.gpus) if space.gpus is not None else default


def disaggregated_candidates(space: Space, default: list[str]) -> list[Candidate]:
    """Same-GPU prefill/decode pools at PP 1: every (prefill TP, decode TP) pair whose 1P+1D unit fits
    ``max_gpus_per_replica``, each dtype and ``max_batch_size`` (the prefill pool's chunk is the
    largest ``max_batched_tokens`` of the space)."""
    chunk = max(space.max_batched_tokens)
    out: list[Candidate] = []
    for g, dt, ptp, dtp, mb in itertools.product(_gpus(space, default), space.weight_dtypes, space.tp, space.tp,
                                                 space.max_batch_sizes):
        if ptp + dtp <= space.max_gpus_per_replica and mb <= chunk:
            out.append(DisaggCandidate(g, dtp, 1, dt, mb, chunk, prefill_gpu=g, prefill_tp=ptp,
                                       link_gbps=space.link_gbps))
    return out


def wide_ep_candidates(space: Space, default: list[str]) -> list[Candidate]:
    """MoE models only (``space.moe``): TP >= 2 replicas with experts over the TP GPUs and DP attention."""
    if not space.moe:
        return []
    out: list[Candidate] = []
    for g, tp, pp, dt, mb, mt in itertools.product(_gpus(space, default), space.tp, space.pp, space.weight_dtypes,
                                                   space.max_batch_sizes, space.max_batched_tokens):
        if tp >= 2 and tp * pp <= space.max_gpus_per_replica:
            out.append(EPCandidate(g, tp, pp, dt, mb, mt))
    return out


def unit_ratio(c: DisaggCandidate, prefill_rate: float, decode_rate: float) -> tuple[int, int]:
    """Prefill and decode replicas of a search unit: the pair (each 1..4) with the most requests/s
    per GPU when the unit runs at the slower pool's rate (fewest GPUs on a tie)."""
    best: tuple[float, int, int, int] | None = None
    for x, y in itertools.product(range(1, MAX_UNIT_REPLICAS + 1), repeat=2):
        if math.gcd(x, y) != 1:
            continue
        gpus = c.pool_gpus(x, y)
        key = (-min(x * prefill_rate, y * decode_rate) / gpus, gpus, x, y)
        if best is None or key < best:
            best = key
    assert best is not None
    return best[2], best[3]
