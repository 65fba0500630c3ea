"""Merge the shards' parts into one :class:`~simulator.engine.simulate.SimulationResult`."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..catalog.models import load_model
from ..config.scenario import Deployment, Scenario
from ..engine import decode_set
from ..engine.engine_defaults import describe
from ..engine.shard import ShardPart
from ..engine.simulate import NOT_COMPILED, SimulationResult
from ..engine.state import Requests
from ..engine.system import build_pool
from ..workload.table import RequestTable


def merge_features(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Counters summed; peaks and fractions (``peak_*``) the largest."""
    out: dict[str, Any] = {}
    for f in parts:
        for key, v in f.items():
            if isinstance(v, dict):
                out[key] = merge_features([out.get(key, {}), v])
            elif key.startswith("peak"):
                out[key] = max(out.get(key, v), v)
            else:
                out[key] = out.get(key, 0) + v
    return out


def merge(s: Scenario, d: Deployment, table: RequestTable, parts: list[ShardPart], wall_s: float,
          note: str) -> SimulationResult:
    n = len(table)
    reqs = Requests(np.array(table.prompt_tokens), np.array(table.output_tokens), table.arrival_s)
    p50, p99 = np.full(n, np.nan), np.full(n, np.nan)
    for p in parts:
        for name, col in p.columns.items():
            getattr(reqs, name)[p.rids] = col
        p50[p.rids], p99[p.rids] = p.itl
    frames = [p.steps for p in parts]
    steps = {c: np.concatenate([f[c] for f in frames]) for c in frames[0]}
    order = np.lexsort((steps["replica"], steps["t_end"]))
    steps = {c: v[order] for c, v in steps.items()}
    by_index = sorted((i, p, k) for p in parts for k, i in enumerate(p.replicas))
    pb = build_pool(load_model(s.model), d)
    gpus = pb.gpus_per_replica * d.replicas
    notes = list(table.notes)
    engine_note = describe(s.deployment)
    if engine_note is not None:
        notes.append(engine_note)
    if decode_set.NativeDecodeSet is None:
        notes.append(NOT_COMPILED)
    notes.append(note)
    arrived = reqs.arrival[~np.isnan(reqs.arrival)]
    peak = pb.sm.gpu.peak_flops(pb.sm.compute_dtype)
    res = SimulationResult(
        scenario=s, requests=reqs, steps=steps, memory=pb.plan, kv_blocks=pb.kv_blocks,
        gpus_per_replica=pb.gpus_per_replica, peak_flops=peak, memory_bandwidth=pb.sm.gpu.memory_bandwidth,
        arrival_end_s=float(arrived.max()) if len(arrived) else 0.0, wall_time_s=wall_s, notes=notes,
        kv_blocks_in_use_at_end=[p.kv_in_use_at_end[k] for _, p, k in by_index],
        kv_blocks_peak=[p.kv_peak[k] for _, p, k in by_index],
        kv_blocks_by_replica=np.array([p.kv_capacity[k] for _, p, k in by_index], dtype=np.int64),
        total_gpus=gpus, peak_flops_total=peak * gpus, bandwidth_total=pb.sm.gpu.memory_bandwidth * gpus,
        features=merge_features([p.features for p in parts]))
    res._itl = (p50, p99)
    return res
