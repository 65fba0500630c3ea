"""Disaggregated candidates: cheap checks per pool, and xPyD rate matching verified by simulation.

Screening prices each pool with its own step model: the prefill pool must meet the TTFT SLO on an
idle replica and the decode pool the TPOT SLO; the prefill pool's throughput bound is the slower
of its chunked prefill and its KV link (prompt tokens x KV bytes per token over ``link_gbps``),
the decode pool's that of decoding at the largest batch that fits. The search unit takes the
replica ratio that matches the two (:func:`.layouts.unit_ratio`). :class:`PoolScreen` checks each
pool once (its GPU, TP, dtype and batching limits), whatever it is paired with: the same-type
candidates here, and pools on two GPU types in :mod:`.mixed`.

Rate matching (:func:`match_pools`): the bisection gives the unit's highest feasible rate ``r``;
the deployment then gets ``x = ceil(R·x_u/r)`` prefill and ``y = ceil(R·y_u/r)`` decode replicas
and is simulated whole at the target rate ``R``. If that run misses the attainment, the pool whose
SLO binds (TTFT: prefill, otherwise decode) gets one more replica, up to :data:`MAX_TOP_UPS` times;
if it meets it, one replica fewer in the pool with more headroom by the bounds is tried and kept
when it still meets the SLOs.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..catalog.models import load_model
from ..config.loader import scenario_from_dict
from ..config.scenario import Scenario
from ..engine.system import build_pool, pool_deployment
from ..errors import DoesNotFitError, ServesimError
from .candidates import Screened, rejection
from .layouts import DisaggCandidate, unit_ratio
from .prices import PriceBook
from .search import BOUND_SLACK, Bound, Probe, Probes, ProbeTask, min_window, serial_probes, throughput_bound, zero_load

MAX_TOP_UPS = 3


@dataclass
class PoolCheck:
    """One pool screened alone (as a colocated replica): why it cannot run, else its idle-replica SLO
    shares (:func:`.search.zero_load`) and its throughput bounds in either role."""

    error: tuple[str, str] | None        # (reason, one-line detail)
    scenario: Scenario | None = None
    zero_load: dict[str, float] = field(default_factory=dict)
    prefill: Bound | None = None         # from the prefill pool's KV capacity
    decode: Bound | None = None          # from the decode pool's KV blocks
    link_rate: float = 0.0               # requests/s the KV link of one prefill replica carries

    @property
    def prefill_rate(self) -> float:
        """The slower of chunked prefill and the KV link, requests/s."""
        assert self.prefill is not None
        return min(self.prefill.prefill_rate, self.link_rate)

    def share(self, role: str) -> float | None:
        """Share of requests within this role's SLO on an idle replica (TTFT: prefill, TPOT: decode)."""
        return self.zero_load.get("ttft_s" if role == "prefill" else "tpot_s")

    def passes(self, role: str, attainment: float) -> bool:
        share = self.share(role)
        return self.error is None and (share is None or share >= attainment)


class PoolScreen:
    """Screens pools once each: every candidate that pairs the same pool with different partners, on
    the same GPU type or another, shares one build. A pool is its GPU, TP, weight dtype and batching
    limits (the rest is the base scenario's), so the result is the same as building anew."""

    def __init__(self, base: Scenario, prompt: np.ndarray, output: np.ndarray, attainment: float) -> None:
        self.data = base.model_dump(mode="json", exclude_none=True)
        self.prompt, self.output, self.attainment = prompt, output, attainment
        self.p_mean, self.o_mean = float(np.mean(prompt)), float(np.mean(output))
        self.model = load_model(base.model)
        self.checks: dict[tuple[Any, ...], PoolCheck] = {}

    def check(self, c: DisaggCandidate, role: str) -> PoolCheck:
        """The check of ``c``'s prefill or decode pool."""
        gpu, tp = (c.prefill_gpu or c.gpu, c.prefill_tp) if role == "prefill" else (c.gpu, c.tp)
        key = (gpu, tp, c.pp, c.weight_dtype, c.max_batch_size, c.max_batched_tokens, c.link_gbps)
        if key not in self.checks:
            solo = dataclasses.replace(c, gpu=gpu, tp=tp, prefill_gpu=gpu, prefill_tp=tp, prefill_replicas=1,
                                       decode_replicas=1)
            self.checks[key] = self._build(solo)
        return self.checks[key]

    def _build(self, c: DisaggCandidate) -> PoolCheck:
        try:
            s = scenario_from_dict(self.data, c.overrides())
            d = s.deployment
            assert d.disaggregation is not None
            pb = build_pool(self.model, pool_deployment(d, d.disaggregation.decode), "decode")
        except DoesNotFitError as err:
            return PoolCheck(("does not fit", str(err)))
        except ServesimError as err:
            return PoolCheck(("unsupported", str(err)))
        sc = s.model_copy(update={"deployment": pb.dep})
        kv_bytes = self.model.kv_bytes_per_token(d.kv_dtype)
        return PoolCheck(None, sc, zero_load(sc, pb.sm, self.prompt, self.output),
                         throughput_bound(sc, pb.sm, pb.plan.kv_tokens, self.p_mean, self.o_mean),
                         throughput_bound(sc, pb.sm, pb.kv_blocks * pb.dep.kv_cache.block_size, self.p_mean,
                                          self.o_mean),
                         c.link_gbps * 1e9 / max(self.p_mean * kv_bytes, 1.0))

    @staticmethod
    def shares(pre: PoolCheck, dec: PoolCheck) -> dict[str, float]:
        """Idle-replica shares of a pair: TTFT on its prefill pool, TPOT on its decode pool, and ``all``."""
        z = {k: v for k, v in (("ttft_s", pre.share("prefill")), ("tpot_s", dec.share("decode"))) if v is not None}
        z["all"] = min(z.values(), default=1.0)
        return z

    @staticmethod
    def unit(c: DisaggCandidate, pre: PoolCheck, dec: PoolCheck) -> tuple[DisaggCandidate, Bound]:
        """The search unit of two pools that passed (replicas in the ratio of their bounds) and its bound."""
        assert pre.prefill is not None and dec.decode is not None
        x, y = unit_ratio(c, pre.prefill_rate, dec.decode.decode_rate)
        rate = min(x * pre.prefill_rate, y * dec.decode.decode_rate)
        bound = Bound(BOUND_SLACK * rate, rate, y * dec.decode.decode_rate, x * pre.prefill_rate, dec.decode.batch)
        return c.sized(x, y), bound

    def screen_one(self, c: DisaggCandidate) -> tuple[DisaggCandidate, Scenario, Bound, dict[str, float]] \
            | dict[str, Any]:
        """The checks of :func:`.candidates.screen` for one pair of pools: the scenario is valid, each
        pool fits, each meets its SLO on an idle replica; then the search unit and its bound."""
        try:
            scenario_from_dict(self.data, c.overrides())
        except DoesNotFitError as err:
            return rejection(c, "does not fit", str(err))
        except ServesimError as err:
            return rejection(c, "unsupported", str(err))
        pre = self.check(c, "prefill")
        dec = self.check(c, "decode") if pre.error is None else pre
        if pre.error or dec.error:
            reason, detail = pre.error or dec.error   # type: ignore[misc]
            return rejection(c, reason, detail)
        z = self.shares(pre, dec)
        if z["all"] < self.attainment:
            worst = min((k for k in z if k != "all"), key=lambda k: z[k])
            return rejection(c, "SLO unreachable at any rate",
                             f"{worst} binds: on an idle {'prefill' if worst == 'ttft_s' else 'decode'} replica only "
                             f"{z[worst]:.1%} of requests meet it, below the {self.attainment:.1%} target")
        unit, bound = self.unit(c, pre, dec)
        return unit, scenario_from_dict(self.data, unit.overrides()), bound, z


def screen_disaggregated(base: Scenario, cands: list[DisaggCandidate], book: PriceBook, *, target_rate: float,
                         attainment: float, prompt: np.ndarray, output: np.ndarray, price_kind: str = "on-demand",
                         provider: str | None = None, max_gpus: int | None = None,
                         pools: PoolScreen | None = None) -> tuple[list[Screened], list[dict[str, Any]]]:
    """The disaggregated candidates that could serve ``target_rate`` (as search units), and the others
    with the reason why; the checks of :func:`.candidates.screen`, per pool (``pools`` keeps the pools'
    checks for :mod:`.mixed`)."""
    keep: list[Screened] = []
    rejected: list[dict[str, Any]] = []
    pools = pools or PoolScreen(base, prompt, output, attainment)
    for c in cands:
        got = pools.screen_one(c)
        if isinstance(got, dict):
            rejected.append(got)
            continue
        unit, s, b, z = got
        units = math.ceil(target_rate / b.rate)
        if max_gpus is not None and units * unit.gpus > max_gpus:
            rejected.append(rejection(unit, "pruned by bound",
                                      f"even at the best case of {b.rate:.3g} req/s per unit, {target_rate:g} req/s "
                                      f"needs {units} units x {unit.gpus} GPUs > --max-gpus {max_gpus}"))
            continue
        keep.append(Screened(unit, s, book.find(c.gpu, price_kind, provider), b, units, z))
    return keep, rejected


def _sized(s: Scenario, c: DisaggCandidate, x: int, y: int) -> Scenario:
    data = s.model_dump(mode="json", exclude_none=True)
    return scenario_from_dict(data, {"deployment.disaggregation": c.pools(x, y)})


def match_pools(s: Scenario, c: DisaggCandidate, bound: Bound, unit_rate: float, *, target_rate: float,
                requests: int, attainment: float, rel_tol: float,
                probes: Probes = serial_probes) -> tuple[int, int, Probe, int]:
    """xPyD for ``target_rate`` from the unit's feasible rate, verified by simulating the whole deployment
    (each run by ``probes``, serially or on a pool).

    Returns (prefill replicas, decode replicas, the verifying probe, simulations run).
    """
    x = math.ceil(target_rate * c.prefill_replicas / unit_rate - 1e-9)
    y = math.ceil(target_rate * c.decode_replicas / unit_rate - 1e-9)
    window = min_window(s, rel_tol)

    def probe(sc: Scenario) -> Probe:
        return probes([ProbeTask(sc, target_rate, requests, None, window)])[0]
    p = probe(_sized(s, c, x, y))
    n = 1
    for _ in range(MAX_TOP_UPS):
        if p.feasible(attainment):
            break
        if p.binding() == "ttft_s":
            x += 1
        else:
            y += 1
        p, n = probe(_sized(s, c, x, y)), n + 1
    if not p.feasible(attainment):
        return x, y, p, n
    # one replica fewer in the pool with more headroom (by the bounds), kept if it still meets the SLOs
    head_p = x * bound.prefill_rate / c.prefill_replicas
    head_d = y * bound.decode_rate / c.decode_replicas
    fx, fy = (x - 1, y) if head_p >= head_d else (x, y - 1)
    if fx >= 1 and fy >= 1:
        q = probe(_sized(s, c, fx, fy))
        n += 1
        if q.feasible(attainment):
            x, y, p = fx, fy, q
    return x, y, p, n
