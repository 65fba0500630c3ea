"""Warm-up and the measurement window: the start-up burst of a closed loop stays out of the metrics."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.cli import main
from simulator.config import scenario_from_dict
from simulator.engine.simulate import simulate
from simulator.metrics.summary import per_request, summarize, window_steps

CLOSED = {"model": "llama-3.1-8b", "deployment": {"gpu": "h100-sxm"},
          "workload": {"arrival": {"process": "closed_loop", "concurrency": 50}, "requests": 200,
                       "prompt_tokens": {"dist": "lognormal", "median": 1000, "sigma": 0.5},
                       "output_tokens": {"dist": "lognormal", "median": 200, "sigma": 0.5}},
          "seed": 1}


def _ttft(requests: int, warmup: int | None) -> float:
    res = simulate(scenario_from_dict(CLOSED, {"workload.requests": requests, "workload.warmup_requests": warmup}))
    return summarize(res)["ttft_s"]["mean"]


def test_closed_loop_ttft_with_warmup_does_not_depend_on_the_request_count():
    # without warm-up the first wave (50 prompts at once) dominates short runs
    cold_short, cold_long = _ttft(200, 0), _ttft(2000, 0)
    assert cold_short > 1.5 * cold_long
    # the default warm-up (= the concurrency) removes it: 4x and 40x the concurrency agree within noise
    warm_short, warm_long = _ttft(200, None), _ttft(2000, None)
    assert warm_short == pytest.approx(warm_long, rel=0.1)


def test_window_is_stated_and_excludes_the_warmup_requests():
    res = simulate(scenario_from_dict(CLOSED, {"workload.warmup_requests": 30}))
    df = per_request(res)
    assert df["warmup"].sum() == 30
    # the warm-up requests are the earliest arrivals
    assert df.loc[df["warmup"], "arrival_s"].max() <= df.loc[~df["warmup"], "arrival_s"].min()
    s = summarize(res, df)
    w = s["window"]
    assert w["warmup_requests"] == 30 and s["requests"] == 170
    assert w["start_s"] == pytest.approx(df.loc[~df["warmup"], "arrival_s"].min())
    assert s["duration_s"] == pytest.approx(w["end_s"] - w["start_s"])
    assert 0 < s["busy_fraction"] <= 1.0 + 1e-9


def test_window_steps_conserve_time_flops_and_bytes():
    res = simulate(scenario_from_dict(CLOSED, {}))
    steps = res.steps
    t0, t1 = float(steps["t_start"].min()), float(steps["t_end"].max())
    cut = 0.37 * (t1 - t0) + t0
    a, b = window_steps(steps, t0, cut), window_steps(steps, cut, t1)
    for key in ("flops", "bytes"):
        assert a[key].sum() + b[key].sum() == pytest.approx(steps[key].sum())
    busy = lambda s: float(np.sum(s["t_end"] - s["t_start"]))  # noqa: E731
    assert busy(a) + busy(b) == pytest.approx(busy(steps))


def test_open_loop_has_no_default_warmup_and_too_many_is_refused(capsys):
    assert scenario_from_dict(CLOSED, {"workload.arrival": {"process": "poisson", "rate": 2.0}}).workload.warmup(100) == 0
    assert main(["run", "--no-progress", "--set", "workload.requests=10", "--set", "workload.warmup_requests=10"]) == 2
    err = capsys.readouterr().err.strip()
    assert "warmup_requests" in err and "\n" not in err
