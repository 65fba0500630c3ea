"""The summary computed column-wise in bounded memory equals the former whole-table computation, bit
for bit, on every example and the engine's edge cases (summary_reference.py is the former code)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from simulator.config import load_scenario, scenario_from_dict
from simulator.engine.simulate import SimulationResult, simulate
from simulator.metrics import itl_stats, summary

from . import summary_reference as old

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCENARIOS = sorted(p for p in EXAMPLES.glob("*.yaml") if "workload" in (yaml.safe_load(p.read_text()) or {}))
LOADED: dict[str, Any] = {
    "workload.requests": 400, "workload.arrival.rate": 40.0,
    "workload.prompt_tokens": {"dist": "lognormal", "median": 400, "sigma": 0.9, "max": 4000},
    "workload.output_tokens": {"dist": "lognormal", "median": 120, "sigma": 0.9, "max": 1500}}
EDGE: dict[str, dict[str, Any]] = {
    "plain": {},
    "loaded": LOADED,
    "recompute, short of blocks": {**LOADED, "deployment.kv_cache.num_blocks": 500},
    "swap, short of blocks": {**LOADED, "deployment.kv_cache.num_blocks": 500, "deployment.kv_cache.preemption": "swap"},
    "rejections": {**LOADED, "deployment.kv_cache.num_blocks": 120},
    "pipeline of 3": {**LOADED, "deployment.pp": 3, "deployment.kv_cache.num_blocks": 700},
    "slos": {**LOADED, "slo": {"ttft_s": 0.3, "tpot_s": 0.02, "e2e_s": 4.0}},
    "overload": {**LOADED, "workload.arrival.rate": 400.0},
    "closed loop, warm-up": {**LOADED, "workload.arrival": {"process": "closed_loop", "concurrency": 40}},
    "warm-up of an open loop": {**LOADED, "workload.warmup_requests": 100},
    "static": {**LOADED, "deployment.batching.policy": "static", "deployment.batching.max_batch_size": 16},
    "one request": {"workload.requests": 1},
}


def _small(over: dict[str, Any]) -> Any:
    base = {"model": "llama-3.1-8b", "deployment": {"gpu": "h100-sxm"},
            "workload": {"arrival": {"process": "poisson", "rate": 5.0}, "requests": 200,
                         "prompt_tokens": {"dist": "fixed", "value": 256}, "output_tokens": {"dist": "fixed", "value": 32}},
            "seed": 1}
    return scenario_from_dict(base, over)


def _same(new: dict[str, Any], ref: dict[str, Any]) -> None:
    """Equal as JSON text: floats print their shortest round-trip form, so equal text is equal bits."""
    a, b = (json.dumps(x, sort_keys=True, default=float, indent=1) for x in (new, ref))
    assert a == b


def _check(res: SimulationResult) -> None:
    pcts = (10.0, 99.9)
    ref_df = old.per_request(res)
    df = summary.per_request(res)
    pd.testing.assert_frame_equal(df, ref_df, check_exact=True)
    ref = old.summarize(res, ref_df, pcts)
    _same(summary.summarize(res, percentiles=pcts), ref)
    _same(summary.summarize(res, df, pcts), ref)


@pytest.mark.parametrize("name", sorted(EDGE))
def test_edge_cases_summarise_as_before(name: str):
    _check(simulate(_small(EDGE[name])))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_examples_summarise_as_before(path: Path):
    arrival = (yaml.safe_load(path.read_text())["workload"] or {}).get("arrival") or {}
    if arrival.get("process") == "trace" and not (path.parent / arrival["path"]).exists():
        pytest.skip(f"trace {arrival['path']} not present")
    _check(simulate(load_scenario(path, {"workload.requests": 150})))


@pytest.mark.parametrize("name", ["loaded", "closed loop, warm-up", "recompute, short of blocks"])
def test_itl_in_small_blocks_and_few_buckets_is_still_exact(name: str, monkeypatch: pytest.MonkeyPatch):
    # many pairwise-sum leaves, coarse histograms: the refinement and the gathering paths run
    monkeypatch.setattr(itl_stats, "BLOCK", 64)
    monkeypatch.setattr(itl_stats, "BUCKETS", 4)
    monkeypatch.setattr(itl_stats, "GATHER", 16)
    res = simulate(_small(EDGE[name]))
    assert itl_stats.itl_stats(res.steps, (99.0,)) is not None   # the block path, not the flat fallback
    ref = old.summarize(res, old.per_request(res), (10.0, 99.9))
    _same(summary.summarize(res, percentiles=(10.0, 99.9)), ref)
