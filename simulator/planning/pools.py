"""Disaggregated candidates: cheap checks per pool, and xPyD rate matching verified by simulation.

Screening prices each pool with its own step model: the prefill pool must meet the TTFT SLO on an
idle replica and the decode pool the TPOT SLO; the prefill pool's throughput bound is the slower
of its chunked prefill and its KV link (prompt tokens x KV bytes per token over ``link_gbps``),
the decode pool's that of decoding at the largest batch that fits. The search unit takes the
replica ratio that matches the two (:func:`.layouts.unit_ratio`).

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


#: One pool's screening inputs, shared by every candidate with that pool: (scenario, build, zero_load).
PoolMemo = dict[tuple[str, str], tuple[Scenario, Any, dict[str, float]]]


def _pool_scenario(s: Scenario, role: str, prompt: np.ndarray, output: np.ndarray,
                   memo: PoolMemo) -> tuple[Scenario, Any, dict[str, float]]:
    """The scenario of one pool alone (as a colocated replica), that pool's build and its idle-replica
    SLO shares (:func:`.search.zero_load`). Candidates that pair the same pool with different partners
    share one build: the key is the pool's whole deployment, so the result is the same as building anew."""
    d = s.deployment
    assert d.disaggregation is not None
    dep = pool_deployment(d, getattr(d.disaggregation, role))
    key = (role, dep.model_dump_json())
    if key not in memo:
        pb = build_pool(load_model(s.model), dep, role)
        sc = s.model_copy(update={"deployment": pb.dep})
        memo[key] = (sc, pb, zero_load(sc, pb.sm, prompt, output))
    return memo[key]


def _screen_one(c: DisaggCandidate, data: dict[str, Any], prompt: np.ndarray, output: np.ndarray,
                attainment: float, memo: PoolMemo
                ) -> tuple[DisaggCandidate, Scenario, Bound, dict[str, float]] | dict[str, Any]:
    p_mean, o_mean = float(np.mean(prompt)), float(np.mean(output))
    try:
        s = scenario_from_dict(data, c.overrides())
        sp, pre, zp = _pool_scenario(s, "prefill", prompt, output, memo)
        sd, dec, zd = _pool_scenario(s, "decode", prompt, output, memo)
    except DoesNotFitError as err:
        return rejection(c, "does not fit", str(err))
    except ServesimError as err:
        return rejection(c, "unsupported", str(err))
    z = {k: v for k, v in (("ttft_s", zp.get("ttft_s")), ("tpot_s", zd.get("tpot_s"))) if v is not None}
    z["all"] = min(z.values(), default=1.0)
    if z["all"] < attainment:
        worst = min((k for k in z if k != "all"), key=lambda k: z[k])
        return rejection(c, "SLO unreachable at any rate",
                         f"{worst} binds: on an idle {'prefill' if worst == 'ttft_s' else 'decode'} replica only "
                         f"{z[worst]:.1%} of requests meet it, below the {attainment:.1%} target")
    bp = throughput_bound(sp, pre.sm, pre.plan.kv_tokens, p_mean, o_mean)
    bd = throughput_bound(sd, dec.sm, dec.kv_blocks * sd.deployment.kv_cache.block_size, p_mean, o_mean)
    kv_bytes = load_model(s.model).kv_bytes_per_token(s.deployment.kv_dtype)
    link_rate = c.link_gbps * 1e9 / max(p_mean * kv_bytes, 1.0)
    prefill_rate = min(bp.prefill_rate, link_rate)
    x, y = unit_ratio(c, prefill_rate, bd.decode_rate)
    unit = dataclasses.replace(c, prefill_replicas=x, decode_replicas=y)
    su = scenario_from_dict(data, unit.overrides())
    rate = min(x * prefill_rate, y * bd.decode_rate)
    return unit, su, Bound(BOUND_SLACK * rate, rate, y * bd.decode_rate, x * prefill_rate, bd.batch), z


def screen_disaggregated(base: Scenario, cands: list[DisaggCandidate], book: PriceBook, *, target_rate: float,
                         attainment: float, prompt: np.ndarray, output: np.ndarray, price_kind: str = "on-demand",
                         provider: str | None = None, max_gpus: int | None = None
                         ) -> tuple[list[Screened], list[dict[str, Any]]]:
    """The disaggregated candidates that could serve ``target_rate`` (as search units), and the others
    with the reason why; the checks of :func:`.candidates.screen`, per pool."""
    keep: list[Screened] = []
    rejected: list[dict[str, Any]] = []
    data = base.model_dump(mode="json", exclude_none=True)
    memo: PoolMemo = {}
    for c in cands:
        got = _screen_one(c, data, prompt, output, attainment, memo)
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
