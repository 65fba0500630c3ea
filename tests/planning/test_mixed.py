"""Prefill and decode pools on two GPU types.

The physical case: Llama-3.1-8B in bf16, 4,000-token prompts and 200-token outputs. Prefill is
compute-bound, so the GPU with the most FLOPs per dollar prefills cheapest (L4: 121 TFLOPS at
$0.39/h against A100 SXM 80GB: 312 TFLOPS at $1.89/h); decode is memory-bound and needs KV room
for a large batch, so the GPU with the most bandwidth and memory per dollar decodes cheapest
(A100: 2.0 TB/s and 80 GB; L4: 0.3 TB/s and 24 GB, room for 9 such requests). The test computes
both per-request costs from the step model alone, then checks that the planner's mixed pair (L4
prefill, A100 decode) beats both same-type pairs in dollars per hour.
"""
from __future__ import annotations

import numpy as np
import pytest

from simulator.catalog.models import load_model
from simulator.config import load_scenario
from simulator.engine.system import build_pool
from simulator.perf.step import BatchShape
from simulator.planning.candidates import Space
from simulator.planning.mixed import Offer, mixed_screened, pair_candidates
from simulator.planning.planner import PlanSettings, plan
from simulator.planning.pools import PoolScreen
from simulator.planning.prices import load_prices

ISL, OSL = 4000, 200
GPUS = ("l4", "a100-sxm-80gb")


def _scenario(tpot: float):
    return load_scenario(None, {"model": "llama-3.1-8b", "workload.prompt_tokens": {"dist": "fixed", "value": ISL},
                                "workload.output_tokens": {"dist": "fixed", "value": OSL},
                                "slo.ttft_s": 2.0, "slo.tpot_s": tpot})


def _settings(rate: float, **kw) -> PlanSettings:
    return PlanSettings(target_rate=rate, gpus=GPUS, tp=(1,), pp=(1,), weight_dtypes=("bf16",),
                        max_batch_sizes=(64,), max_batched_tokens=(8192,), **{"mixed_pools": True, **kw})


def _per_request_usd(gpu: str) -> tuple[float, float]:
    """Dollars per request of prefill (one 4,000-token prompt alone) and of decode (200 steps at the
    largest batch that fits), from the step model and the price file only."""
    s = load_scenario(None, {"model": "llama-3.1-8b", "deployment.gpu": gpu, "deployment.weight_dtype": "bf16",
                             "deployment.batching.max_batch_size": 64,
                             "deployment.batching.max_batched_tokens": 8192})
    pb = build_pool(load_model(s.model), s.deployment)
    usd_per_s = load_prices().find(gpu, "on-demand", None).usd_per_gpu_hour / 3600.0
    t_pre = pb.sm.price(BatchShape.prefill(1, ISL), exact=True)[0]
    batch = min(64, pb.kv_blocks * pb.dep.kv_cache.block_size // (ISL + OSL // 2))
    t_dec = pb.sm.price(BatchShape.decode(batch, ISL + OSL // 2), exact=True)[0]
    return usd_per_s * t_pre, usd_per_s * OSL * t_dec / batch


def _pairs(res) -> dict[tuple[str, str], dict]:
    return {(r["deployment"]["prefill"]["gpu"], r["deployment"]["decode"]["gpu"]): r
            for r in res["plans"] if r["layout"] == "disaggregated"}


def test_pair_candidates_two_types_one_vendor():
    space = Space(gpus=("h100-sxm", "l4", "mi300x"), tp=(1, 2, 4, 8), weight_dtypes=("fp8",))
    cands = pair_candidates(space, list(space.gpus))
    pairs = {(c.prefill_gpu, c.gpu) for c in cands}
    assert pairs == {("h100-sxm", "l4"), ("l4", "h100-sxm")}          # no NVIDIA-AMD pair, no same-type pair
    assert all(c.prefill_tp + c.tp <= 8 for c in cands) and any(c.prefill_tp != c.tp for c in cands)


def test_mixed_pair_beats_both_same_type_pairs_per_dollar():
    l4_pre, l4_dec = _per_request_usd("l4")
    a100_pre, a100_dec = _per_request_usd("a100-sxm-80gb")
    assert l4_pre < a100_pre and a100_dec < l4_dec      # each phase is cheapest on a different GPU
    mixed = l4_pre + a100_dec
    assert mixed < 0.85 * (a100_pre + a100_dec) and mixed < 0.6 * (l4_pre + l4_dec)

    res = plan(_scenario(0.1), _settings(4, kinds=("disaggregated",), exhaustive=True, workers=1))
    pairs = _pairs(res)
    assert set(pairs) == {("l4", "l4"), ("a100-sxm-80gb", "a100-sxm-80gb"), ("l4", "a100-sxm-80gb"),
                          ("a100-sxm-80gb", "l4")}
    best = pairs[("l4", "a100-sxm-80gb")]
    assert res["plans"][0] is best
    assert best["cost_per_hour"] < pairs[("a100-sxm-80gb", "a100-sxm-80gb")]["cost_per_hour"]
    assert best["cost_per_hour"] < pairs[("l4", "l4")]["cost_per_hour"]
    d = best["deployment"]
    assert best["gpus"] == d["prefill"]["replicas"] * d["prefill"]["tp"] + d["decode"]["replicas"] * d["decode"]["tp"]
    assert best["cost_per_hour"] == pytest.approx(d["prefill"]["replicas"] * best["prefill_price"]["usd_per_gpu_hour"]
                                                  + d["decode"]["replicas"] * best["price"]["usd_per_gpu_hour"])
    assert best["prefill_price"]["usd_per_gpu_hour"] == 0.39 and best["price"]["usd_per_gpu_hour"] == 1.89
    assert best["slo_attainment"] >= 0.99 and best["tpot_p99"] <= 0.1 and best["ttft_p99"] <= 2.0
    assert res["counts"]["mixed_pairs"]["queued"] == 2


def _comparable(res):
    return ([{k: v for k, v in r.items() if k != "wall_s"} for r in res["plans"]], res["rejected"],
            {k: v for k, v in res["counts"].items() if k not in ("screen_s", "wall_s")})


def test_mixed_plan_wins_and_does_not_depend_on_workers():
    # TPOT 40 ms: colocated A100 replicas interleave 4,000-token prefills with decode steps and need
    # many replicas; L4 cannot decode within 40 ms at all; L4 prefill + A100 decode is cheapest
    one = plan(_scenario(0.04), _settings(8, workers=1))
    assert one["plans"][0]["deployment"]["prefill"]["gpu"] == "l4"
    assert one["plans"][0]["deployment"]["decode"]["gpu"] == "a100-sxm-80gb"
    lay = one["layouts"]
    assert lay["winner"] == "disaggregated" and lay["ratio"] < 1
    two = plan(_scenario(0.04), _settings(8, workers=2))
    assert _comparable(one) == _comparable(two)


def test_mixed_pools_off():
    res = plan(_scenario(0.04), _settings(8, workers=1, mixed_pools=False))
    assert all(g[0] == g[1] for g in _pairs(res)) and res["counts"]["mixed_pairs"]["pairs"] == 0


def test_pairs_priced_alike_and_under_the_cap():
    s = _scenario(0.1)
    rng = np.random.default_rng(0)
    prompt, output = np.full(200, ISL), rng.integers(OSL, OSL + 1, 200)
    pools = PoolScreen(s, prompt, output, 0.99)
    space = Space(gpus=("l4", "a100-sxm-80gb", "b200"), tp=(1,), weight_dtypes=("bf16",), max_batch_sizes=(64,),
                  max_batched_tokens=(8192,))
    cands = pair_candidates(space, list(space.gpus))
    offer = Offer(load_prices(), "on-demand", None, 4.0, None)
    kept, n = mixed_screened(pools, cands, offer, lambda priced, types: None)
    got = {(k.candidate.prefill_gpu, k.candidate.gpu) for k in kept}
    assert got == {("l4", "a100-sxm-80gb"), ("a100-sxm-80gb", "l4")}      # b200 has no on-demand price
    assert n.pairs == n.queued == 2 and n.over_cap == 0
    cheap = min(k.min_cost_per_hour for k in kept)
    kept, n = mixed_screened(pools, cands, offer, lambda priced, types: cheap)
    assert [k.min_cost_per_hour for k in kept] == [cheap] and n.over_cap == 1
    def space(*gpus):
        return Space(gpus=gpus, tp=(1,), weight_dtypes=("bf16",), max_batch_sizes=(64,), max_batched_tokens=(8192,))
    kept, n = mixed_screened(pools, pair_candidates(space("b200", "h100-sxm"), ["b200", "h100-sxm"]), offer,
                             lambda priced, types: None)
    assert kept == [] and n.pairs == 0          # one priced, one not: not paired
    asked = []
    kept, n = mixed_screened(pools, pair_candidates(space("b200", "b300"), ["b200", "b300"]), offer,
                             lambda priced, types: asked.append((priced, types)))
    assert n.queued == 2 and all(k.price is None and k.prefill_price is None for k in kept)
    assert set(asked) == {(False, "b200+b300")}       # unpriced: capped in GPUs against plans on these types
