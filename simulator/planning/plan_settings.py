"""What ``servesim plan`` searches and how: the planner's settings record."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..schema import StrictModel
from .candidates import Space


class PlanSettings(StrictModel):
    """What ``servesim plan`` searches and how."""

    target_rate: float = Field(gt=0, description="requests per second to serve in total")
    attainment: float = Field(0.99, gt=0, le=1, description="share of requests that must meet the SLOs")
    requests: int = Field(400, ge=50, description="requests per simulated evaluation")
    rel_tol: float = Field(0.05, gt=0, lt=1, description="bisection stops at this relative bracket width")
    search_points: int = Field(1, ge=1, le=8, description="rates probed per round of a candidate's search (1: "
                                                           "bisection); the workers simulate them in parallel")
    max_gpus: int | None = Field(None, ge=1, description="GPUs the whole deployment may use")
    gpus: tuple[str, ...] | None = Space.gpus          # the candidate grid: defaults of candidates.Space
    tp: tuple[int, ...] = Space.tp
    pp: tuple[int, ...] = Space.pp
    weight_dtypes: tuple[str, ...] = Space.weight_dtypes
    max_batch_sizes: tuple[int, ...] = Space.max_batch_sizes
    max_batched_tokens: tuple[int, ...] = Space.max_batched_tokens
    kinds: tuple[Literal["aggregated", "disaggregated", "wide_ep"], ...] = Field(
        ("aggregated", "disaggregated", "wide_ep"), min_length=1,
        description="layouts searched: colocated replicas, prefill/decode pools, MoE expert parallelism")
    mixed_pools: bool = Field(False, description="disaggregated plans may also put prefill and decode on two GPU "
                                                      "types (about 1.5x the search's CPU time)")
    link_gbps: float = Field(50.0, gt=0, description="KV link per prefill replica of a disaggregated plan, GB/s")
    price_kind: Literal["on-demand", "reserved", "spot"] = "on-demand"
    provider: str | None = None
    prices_file: str | None = None
    prices: tuple[str, ...] = Field((), description="GPU=USD_PER_HOUR offers of price_kind (--price)")
    prune_factor: float = Field(1.5, ge=1.0, description="skip candidates whose best case costs this many times "
                                                         "the best plan")
    exhaustive: bool = False
    stop_when_replicas_decided: bool = True
    replications: int = Field(0, ge=0, description="extra seeds at the chosen rate for P(meet SLO)")
    workers: int = Field(1, ge=1)
    executor: Literal["local", "ray"] = Field("local", description="local processes, or Ray tasks (extra ray)")
