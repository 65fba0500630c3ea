"""Summary and per-request table: new columns, feature blocks, GPU totals across pools and models."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.config import scenario_from_dict
from simulator.config.loader import DEFAULT_SCENARIO
from simulator.engine.simulate import simulate
from simulator.metrics.summary import growth_slope, per_request, summarize, time_series

BASE = {"model": "llama-3.1-8b", "deployment": {"gpu": "h100-sxm"},
        "workload": {"arrival": {"process": "poisson", "rate": 5.0}, "requests": 150,
                     "prompt_tokens": {"dist": "fixed", "value": 300}, "output_tokens": {"dist": "fixed", "value": 40}},
        "seed": 2}


def _run(**over):
    return simulate(scenario_from_dict(BASE, over))


def test_per_request_has_itl_percentiles_and_feature_columns():
    res = _run()
    df = per_request(res)
    for col in ("itl_p50_s", "itl_p99_s", "cached_prompt_tokens", "kv_transfer_s", "served_by"):
        assert col in df
    assert (df["itl_p50_s"] <= df["itl_p99_s"]).all() and (df["itl_p99_s"] <= df["max_itl_s"] + 1e-12).all()
    assert (df["served_by"] == "gpu").all() and df["kv_transfer_s"].isna().all()
    s = summarize(res, df)
    assert s["itl_request_p99_s"]["p50"] == pytest.approx(float(np.median(df["itl_p99_s"])))
    # no optimisation on: no feature blocks
    assert not {"prefix_cache", "speculative", "disaggregation", "service_cache", "cascade"} & set(s)


def test_mfu_counts_every_gpu_of_every_pool():
    dis = {"prefill": {"replicas": 1, "tp": 2}, "decode": {"replicas": 2}, "link": {"bandwidth_gbps": 50}}
    res = _run(**{"deployment.disaggregation": dis})
    s = summarize(res)
    assert s["gpus"] == 4 and res.total_gpus == 4
    flops = float(res.steps["flops"].sum())
    assert s["mfu"] == pytest.approx(flops / (s["duration_s"] * 4 * res.peak_flops))
    ts = time_series(res)
    cap = res.kv_blocks_by_replica[res.steps["replica"]]
    assert np.allclose(ts["kv_used_fraction"], res.steps["kv_blocks"] / cap)
    assert s["kv_cache"]["peak_used_fraction"] <= 1.0


def test_feature_blocks_appear_when_turned_on():
    s = summarize(_run(**{"deployment.kv_cache.prefix_caching": True,
                          "workload.prefix": {"system_prompt_tokens": 512, "share": 1.0}}))
    pc = s["prefix_cache"]
    assert 0 < pc["hit_rate"] <= 512 / 812 and pc["prefill_tokens_saved"] > 0
    assert pc["ttft_hit_mean_s"] is not None
    s = summarize(_run(**{"deployment.speculative": {"method": "ngram", "k": 2, "acceptance": 0.5}}))
    assert s["speculative"]["expected_tokens_per_step"] == pytest.approx(1.75)
    s = summarize(_run(**{"deployment.service_cache": {"exact": {"hit_rate": 0.5}}}))
    assert s["service_cache"]["exact_hits"] > 0


def test_growth_slope_is_the_least_squares_slope():
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(100, 200, 500))
    y = 0.3 * x + rng.normal(0, 5, 500)
    assert growth_slope(x, y) == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-9)
    assert growth_slope(np.full(20, 3.0), y[:20]) is None      # no time between the arrivals


def test_arrivals_near_the_smallest_floats_give_a_verdict_not_a_linalg_error():
    """arrival.rate 1e300: arrivals 1e-300 s apart made np.polyfit's SVD fail (LinAlgError)."""
    s = scenario_from_dict(DEFAULT_SCENARIO, {"workload.arrival.rate": 1e300, "workload.requests": 300})
    st = summarize(simulate(s))["stability"]
    assert st["stable"] is False and st["queue_s_at_end_of_arrivals"] > 1.0
    # the queue grew by seconds over a window of about 1e-298 s
    assert st["queue_growth_per_s"] is None or st["queue_growth_per_s"] > 1e290


def test_stats_match_numpy_and_weights_repeat_samples():
    from simulator.metrics.summary import stats
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    s = stats(x, pcts=(50, 95, 99.9))
    assert s["mean"] == pytest.approx(x.mean()) and s["std"] == pytest.approx(x.std())
    assert (s["min"], s["max"]) == (1.0, 9.0) and s["median"] == pytest.approx(np.median(x))
    assert s["p99.9"] == pytest.approx(np.percentile(x, 99.9)) and "p90" not in s
    # integer weights act as repeated samples
    w = np.array([1, 2, 1, 1, 3, 1, 1, 1], dtype=float)
    sw, rep = stats(x, w), np.repeat(x, w.astype(int))
    assert sw["mean"] == pytest.approx(rep.mean()) and sw["std"] == pytest.approx(rep.std())
    assert sw["max"] == 9.0 and stats(np.array([]))["p99.9"] is None


def test_total_throughput_and_per_user_rate():
    res = _run()
    df = per_request(res)
    s = summarize(res, df, percentiles=(99.9,))
    assert s["throughput_total_tokens_per_s"] == pytest.approx(
        s["throughput_input_tokens_per_s"] + s["throughput_output_tokens_per_s"])
    tpot = df["tpot_s"].to_numpy()
    assert s["output_tokens_per_s_per_user"]["mean"] == pytest.approx(np.nanmean(1 / tpot))
    assert "p99.9" in s["ttft_s"] and s["percentiles"][-1] == 99.9
    assert s["slos"] == {"ttft_s": 2.0, "tpot_s": 0.1}
