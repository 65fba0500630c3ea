"""Disaggregated and wide-EP candidates in the planner: which layout wins where it should.

The direction is pinned (not the numbers): with 8,000-token prompts and a 30 ms TPOT SLO, colocated
replicas interleave long prefill chunks with decode steps and miss the TPOT tail, so prefill/decode
pools serve the rate with fewer GPUs; with 200-token prompts there is little prefill to move and
the smallest pools (one prefill and one decode replica) cost more than one colocated replica.
"""
from __future__ import annotations

import pytest

from simulator.config import load_scenario
from simulator.planning.layouts import DisaggCandidate, disaggregated_candidates, unit_ratio, wide_ep_candidates
from simulator.planning.candidates import Space
from simulator.planning.planner import PlanSettings, plan


def _plan(isl: int, **kw):
    s = load_scenario(None, {"model": "llama-3.1-70b", "workload.prompt_tokens": {"dist": "fixed", "value": isl},
                             "workload.output_tokens": {"dist": "fixed", "value": 200},
                             "slo.ttft_s": 2.0, "slo.tpot_s": 0.03})
    st = PlanSettings(target_rate=4, gpus=("h100-sxm",), pp=(1,), weight_dtypes=("fp8",), max_batch_sizes=(64,),
                      max_batched_tokens=(8192,), exhaustive=True, workers=1, **kw)
    return plan(s, st)


def test_long_prompts_disaggregated_wins():
    res = _plan(8000)
    lay = res["layouts"]
    assert lay["winner"] == "disaggregated" and lay["ratio"] < 1
    best = res["plans"][0]
    assert best["layout"] == "disaggregated"
    d = best["deployment"]
    assert best["gpus"] == d["prefill"]["replicas"] * d["prefill"]["tp"] + d["decode"]["replicas"] * d["decode"]["tp"]
    assert best["cost_per_hour"] == pytest.approx(best["gpus"] * best["price"]["usd_per_gpu_hour"])
    assert best["slo_attainment"] >= 0.99 and best["tpot_p99"] <= 0.03      # verified at the full rate


def test_short_prompts_disaggregated_loses():
    res = _plan(200)
    lay = res["layouts"]
    assert lay["winner"] == "aggregated" and lay["other_layout"] == "disaggregated" and lay["ratio"] > 1


def test_aggregated_only_has_no_pools():
    res = _plan(200, kinds=("aggregated",))
    assert {r["layout"] for r in res["plans"]} == {"aggregated"}


def test_unit_ratio_matches_the_pools():
    c = DisaggCandidate("h100-sxm", 1, 1, "fp8", 64, 8192, prefill_gpu="h100-sxm", prefill_tp=1)
    assert unit_ratio(c, 1.0, 1.0) == (1, 1)
    assert unit_ratio(c, 1.0, 3.0) == (3, 1)          # prefill three times slower: three prefill replicas
    assert unit_ratio(c, 2.0, 1.0) == (1, 2)


def test_generators():
    space = Space(gpus=("h100-sxm",), tp=(1, 2, 4, 8), max_gpus_per_replica=8)
    pairs = {(c.prefill_tp, c.tp) for c in disaggregated_candidates(space, [])}
    assert pairs and all(p + d <= 8 for p, d in pairs) and (8, 1) not in pairs
    assert wide_ep_candidates(space, []) == []                                  # dense model: none
    ep = wide_ep_candidates(Space(gpus=("h100-sxm",), moe=True), [])
    assert ep and all(c.tp >= 2 for c in ep)
    assert ep[0].overrides()["deployment.moe.attention"] == "dp"


def test_wide_ep_candidates_are_planned_for_moe():
    s = load_scenario(None, {"model": "qwen3-30b-a3b", "workload.prompt_tokens": {"dist": "fixed", "value": 500},
                             "workload.output_tokens": {"dist": "fixed", "value": 100}})
    st = PlanSettings(target_rate=4, gpus=("h100-sxm",), tp=(2,), pp=(1,), weight_dtypes=("bf16",),
                      max_batch_sizes=(64,), max_batched_tokens=(8192,), exhaustive=True, workers=1,
                      kinds=("aggregated", "wide_ep"))
    res = plan(s, st)
    ep = [r for r in res["plans"] if r["layout"] == "wide_ep"]
    assert ep and ep[0]["deployment"]["expert_parallel"] == 2
