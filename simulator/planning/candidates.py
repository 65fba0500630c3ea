"""Deployment candidates for the planner, and the cheap checks that rule some out before simulating.

A candidate is a GPU type × TP × PP × weight dtype × batching limits. Candidate kinds are generated
by the functions in :data:`CANDIDATE_KINDS` (aggregated here; disaggregated pools and wide expert
parallelism in :mod:`.layouts`).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..catalog.gpus import list_gpus, load_gpu
from ..config.loader import scenario_from_dict
from ..config.scenario import Scenario
from ..errors import DoesNotFitError, ServesimError
from .prices import PriceBook, PriceEntry
from .search import Bound, throughput_bound, zero_load


@dataclass(frozen=True)
class Candidate:
    """One deployment of one replica."""

    gpu: str
    tp: int
    pp: int
    weight_dtype: str
    max_batch_size: int
    max_batched_tokens: int
    kind: str = "aggregated"

    @property
    def gpus(self) -> int:
        """GPUs per replica."""
        return self.tp * self.pp

    def overrides(self) -> dict[str, Any]:
        """Dotted scenario keys this candidate sets."""
        return {"deployment.gpu": self.gpu, "deployment.tp": self.tp, "deployment.pp": self.pp,
                "deployment.weight_dtype": self.weight_dtype, "deployment.replicas": 1,
                "deployment.batching.max_batch_size": self.max_batch_size,
                "deployment.batching.max_batched_tokens": self.max_batched_tokens}

    def gpu_counts(self) -> dict[str, int]:
        """GPUs of each type this candidate uses (one replica, or one unit of pools)."""
        return {self.gpu: self.gpus}

    def gpu_types(self) -> str:
        """The GPU types it runs on, as one key (``a+b`` for pools on two types); plans are compared
        in GPUs, when unpriced, only against plans on the same types."""
        return "+".join(sorted(self.gpu_counts()))

    def deployment(self) -> dict[str, Any]:
        return {"kind": self.kind, "gpu": self.gpu, "tp": self.tp, "pp": self.pp, "weight_dtype": self.weight_dtype,
                "max_batch_size": self.max_batch_size, "max_batched_tokens": self.max_batched_tokens}

    def label(self) -> str:
        return (f"{self.gpu} tp{self.tp} pp{self.pp} {self.weight_dtype} "
                f"b{self.max_batch_size}/t{self.max_batched_tokens}")


@dataclass(frozen=True)
class Space:
    """The grid of aggregated candidates (``gpus`` None: every GPU of the catalog, priced or not)."""

    gpus: tuple[str, ...] | None = None
    tp: tuple[int, ...] = (1, 2, 4, 8)
    pp: tuple[int, ...] = (1, 2)
    weight_dtypes: tuple[str, ...] = ("bf16", "fp8")
    max_batch_sizes: tuple[int, ...] = (64, 256)
    max_batched_tokens: tuple[int, ...] = (2048, 8192)
    max_gpus_per_replica: int = 8
    link_gbps: float = 50.0       # KV link per prefill replica of disaggregated candidates, GB/s
    moe: bool = False             # the model is a mixture of experts (wide expert parallelism applies)


def default_gpus(priced: list[str]) -> list[str]:
    """The GPUs a plan considers without ``--gpus``: every ``kind: gpu`` profile of the catalog, and
    any other profile (a TPU) that has a price of the chosen kind."""
    return sorted({g for g in list_gpus() if load_gpu(g).kind == "gpu"} | set(priced))


def aggregated_candidates(space: Space, default: list[str]) -> list[Candidate]:
    """Every combination of the space with ``tp * pp <= max_gpus_per_replica``."""
    gpus = list(space.gpus) if space.gpus is not None else default
    out = []
    for g, tp, pp, dt, mb, mt in itertools.product(gpus, space.tp, space.pp, space.weight_dtypes,
                                                   space.max_batch_sizes, space.max_batched_tokens):
        if tp * pp <= space.max_gpus_per_replica:
            out.append(Candidate(g, tp, pp, dt, mb, mt))
    return out


#: Candidate generators by kind (the planner adds those of :mod:`.layouts`).
CANDIDATE_KINDS: dict[str, Callable[[Space, list[str]], list[Candidate]]] = {"aggregated": aggregated_candidates}


@dataclass
class Screened:
    """A candidate that passed the cheap checks, with its price (None: no offer of the chosen kind) and bounds.

    ``price`` is the offer for ``candidate.gpu``; pools on two GPU types also have ``prefill_price``,
    the offer for the prefill pool's GPU (both priced, or both None).
    """

    candidate: Candidate
    scenario: Scenario
    price: PriceEntry | None
    bound: Bound
    min_replicas: int             # replicas needed even at the bound's rate
    zero_load: dict[str, float] = field(default_factory=dict)
    prefill_price: PriceEntry | None = None

    @property
    def priced(self) -> bool:
        return self.price is not None

    def cost_per_hour(self, counts: dict[str, int]) -> float | None:
        """Dollars per hour of ``counts`` GPUs of each type (None without a price)."""
        if self.price is None:
            return None
        other = self.prefill_price or self.price
        return sum(n * (self.price if g == self.candidate.gpu else other).usd_per_gpu_hour for g, n in counts.items())

    @property
    def replica_cost(self) -> float | None:
        """Dollars per hour of one replica, or one unit of pools (None without a price)."""
        return self.cost_per_hour(self.candidate.gpu_counts())

    @property
    def min_gpus(self) -> int:
        """GPUs needed even at the bound's rate."""
        return self.min_replicas * self.candidate.gpus

    @property
    def min_cost_per_hour(self) -> float | None:
        """Dollars per hour of :attr:`min_gpus`: no plan with this candidate costs less (None without a price)."""
        return self.cost_per_hour({g: n * self.min_replicas for g, n in self.candidate.gpu_counts().items()})


def rejection(c: Candidate, reason: str, detail: str) -> dict[str, Any]:
    """A rejected candidate as reported: label, deployment, reason category, one-line detail."""
    return {"candidate": c.label(), "deployment": c.deployment(), "reason": reason, "detail": detail}


def screen(base: Scenario, cands: list[Candidate], book: PriceBook, *, target_rate: float, attainment: float,
           prompt: np.ndarray, output: np.ndarray, price_kind: str = "on-demand", provider: str | None = None,
           max_gpus: int | None = None) -> tuple[list[Screened], list[dict[str, Any]]]:
    """Keep the candidates that could serve ``target_rate``; the others with the reason why.

    A candidate without a price of ``price_kind`` is kept (its price None): it is simulated and
    ranked by GPUs, not dollars. Checks, in order: the scenario is valid and the model shards on it (TP divides
    the heads, the dtype is supported); the model fits in memory; the SLOs can be met on an idle
    replica; the best-case replica count fits within ``max_gpus``.
    """
    from ..engine.simulate import build_step_model
    from ..perf.memory import memory_plan

    keep: list[Screened] = []
    rejected: list[dict[str, Any]] = []
    data = base.model_dump(mode="json", exclude_none=True)
    p_mean, o_mean = float(np.mean(prompt)), float(np.mean(output))
    for c in cands:
        price = book.find(c.gpu, price_kind, provider)
        try:
            s = scenario_from_dict(data, c.overrides())
            sm = build_step_model(s)
            d = s.deployment
            mp = memory_plan(sm.model, sm.gpu, d.weight_dtype, d.kv_dtype, d.tp, d.pp,
                             gpu_memory_utilization=d.kv_cache.gpu_memory_utilization,
                             max_batched_tokens=d.batching.max_batched_tokens)
        except DoesNotFitError as err:
            rejected.append(rejection(c, "does not fit", str(err)))
            continue
        except ServesimError as err:
            rejected.append(rejection(c, "unsupported", str(err)))
            continue
        z = zero_load(s, sm, prompt, output)
        if z["all"] < attainment:
            worst = min((k for k in z if k != "all"), key=lambda k: z[k])
            rejected.append(rejection(c, "SLO unreachable at any rate",
                                      f"{worst} binds: on an idle replica only {z['all']:.1%} of requests meet "
                                      f"the SLOs "
                                      f"({worst}: {z[worst]:.1%}), below the {attainment:.1%} target"))
            continue
        kv_tokens = d.kv_cache.num_blocks * d.kv_cache.block_size if d.kv_cache.num_blocks else mp.kv_tokens
        b = throughput_bound(s, sm, kv_tokens, p_mean, o_mean)
        reps = math.ceil(target_rate / b.rate)
        if max_gpus is not None and reps * c.gpus > max_gpus:
            rejected.append(rejection(c, "pruned by bound",
                                      f"even at the best case of {b.rate:.3g} req/s per replica, {target_rate:g} req/s "
                                      f"needs {reps} replicas x {c.gpus} GPUs > --max-gpus {max_gpus}"))
            continue
        keep.append(Screened(c, s, price, b, reps, z))
    return keep, rejected
