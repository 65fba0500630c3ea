"""The terminal summary: what ran, units that scale, offered against achieved rate with a verdict."""
from __future__ import annotations

import re

import pytest

from simulator.config import scenario_from_dict
from simulator.engine.simulate import simulate
from simulator.metrics.report import duration, format_summary
from simulator.metrics.summary import summarize

BASE = {"model": "llama-3.1-8b", "deployment": {"gpu": "h100-sxm"},
        "workload": {"arrival": {"process": "poisson", "rate": 2.0}, "requests": 400,
                     "prompt_tokens": {"dist": "fixed", "value": 1000}, "output_tokens": {"dist": "fixed", "value": 200}},
        "seed": 3}


def _summary(rate: float) -> dict:
    return summarize(simulate(scenario_from_dict(BASE, {"workload.arrival.rate": rate})))


def test_durations_scale_their_unit():
    assert duration(0.0004) == "400 us" and duration(0.0123) == "12.3 ms"
    assert duration(4.561) == "4.56 s" and duration(1973.2389) == "32.9 min" and duration(None) == "n/a"


def test_header_names_what_ran_and_light_load_keeps_up():
    s = _summary(2.0)
    text = format_summary(s, width=200)
    assert "llama-3.1-8b on 1 x h100-sxm" in text and "TP1 PP1" in text and "weights bf16" in text
    assert "poisson at 2 req/s offered" in text and "TTFT <= 2.00 s" in text
    assert s["rate"]["kept_up"] is True and ": kept up" in text


def test_overload_is_called_out_even_when_the_queue_slope_is_small():
    s = _summary(200.0)   # far beyond one H100's capacity for 1,000 + 200 tokens
    assert s["rate"]["kept_up"] is False
    assert s["rate"]["achieved_rate"] < 0.5 * s["rate"]["offered_rate"]
    assert "DID NOT KEEP UP" in format_summary(s, width=200)


def test_summary_is_wrapped_to_the_width_and_keeps_every_latency_row():
    s = _summary(2.0)
    text = format_summary(s, width=60)
    assert max(len(line) for line in text.splitlines()) <= 60
    wide = format_summary(s, width=200)
    for name in ("TTFT", "TPOT", "ITL", "E2E"):
        assert any(line.startswith(f"│ {name} ") for line in wide.splitlines())
    assert "p99.9" in wide and "median" in wide


def test_utilisation_names_the_peak_it_divides_by():
    """MFU against the dense peak of the weights' compute dtype (the catalog's figure), MBU against HBM."""
    from simulator.catalog.gpus import load_gpu

    h100 = load_gpu("h100-sxm")
    for dtype in ("bf16", "fp8"):
        res = simulate(scenario_from_dict(BASE, {"workload.requests": 100, "deployment.weight_dtype": dtype}))
        s = summarize(res)
        peak = h100.dense_tflops[dtype].value
        assert s["utilisation_peaks"] == {"compute_dtype": dtype, "peak_tflops_per_gpu": peak,
                                          "hbm_tbps_per_gpu": h100.memory_bandwidth_tbps.value, "mixed": False}
        assert s["mfu"] == pytest.approx(res.steps["flops"].sum() / (s["duration_s"] * peak * 1e12))
        text = format_summary(s, width=200)
        assert f"of {peak:.4g} TFLOPS {dtype} dense" in text
        assert f"of {h100.memory_bandwidth_tbps.value:.3g} TB/s HBM" in text


def test_gpu_busy_is_step_time_over_wall_time():
    res = simulate(scenario_from_dict(BASE, {"workload.requests": 100, "workload.arrival.rate": 0.5}))
    s = summarize(res)
    busy = float((res.steps["t_end"] - res.steps["t_start"]).sum()) / s["duration_s"]
    assert s["busy_fraction"] == pytest.approx(busy) and busy < 0.9
    assert re.search(rf"GPU busy +{busy:.1%} of wall time", format_summary(s, width=200))


CPU = {"deployment.gpu": "epyc-9654", "workload.arrival.rate": 20.0,
       "workload.prompt_tokens": {"dist": "fixed", "value": 200}, "workload.output_tokens": {"dist": "fixed", "value": 20}}


def _lines(s: dict) -> dict[str, str]:
    text = format_summary(s, width=400)
    return {line.split()[0]: line for line in text.splitlines() if line.split() and line.split()[0] in ("rate", "stable")}


def test_overloaded_run_is_overloaded_in_every_line():
    """A CPU at 20 req/s completes well under one request per second: rate, verdict and stability all
    say so (the run used to print 'kept up' next to 'completed 0 req/s')."""
    s = summarize(simulate(scenario_from_dict(BASE, {**CPU, "workload.requests": 40})))
    assert s["rate"]["achieved_rate"] < 0.2 * s["rate"]["offered_rate"]
    assert s["rate"]["kept_up"] is False and s["stability"]["stable"] is False
    lines = _lines(s)
    assert "DID NOT KEEP UP" in lines["rate"] and "kept up" not in lines["rate"].replace("KEEP UP", "")
    assert lines["stable"].split()[1] == "NO:"


def test_too_few_arrivals_claim_nothing():
    s = summarize(simulate(scenario_from_dict(BASE, {**CPU, "workload.requests": 6})))
    assert s["rate"]["kept_up"] is None and s["stability"]["judged"] is False
    lines = _lines(s)
    assert ": n/a" in lines["rate"] and lines["stable"].split()[1] == "n/a:"


def test_completion_shortfall_alone_makes_the_run_unstable():
    """One rule: a shortfall of completions that the queue-growth test misses still marks it unstable."""
    from simulator.metrics.summary import load_verdict

    rate = {"offered_rate": 14.0, "achieved_rate": 9.4, "kept_up": False}
    r, st = load_verdict(rate, {"stable": True, "queue_growth_per_s": 0.01, "queue_s_at_end_of_arrivals": 0.5})
    assert r["kept_up"] is False and st["stable"] is False and "9.4 of 14 req/s" in st["reason"]
    r, st = load_verdict({**rate, "kept_up": True}, {"stable": False, "queue_growth_per_s": 0.3})
    assert r["kept_up"] is False and st["stable"] is False


def test_light_and_heavy_load_agree_across_rates():
    for rate in (1.0, 4.0, 30.0, 200.0):
        s = summarize(simulate(scenario_from_dict(BASE, {"workload.arrival.rate": rate, "workload.requests": 300})))
        assert s["rate"]["kept_up"] is s["stability"]["stable"], rate
