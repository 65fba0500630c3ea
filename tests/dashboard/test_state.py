"""Scenario ⇄ widget values, URL parameters and YAML text round trips; chart data reshapes."""
from __future__ import annotations

import pytest

pytest.importorskip("streamlit", reason="the dashboard needs the 'app' extra: pip install -e '.[app]'")
pytest.importorskip("altair", reason="the dashboard needs the 'app' extra: pip install -e '.[app]'")

import math

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from simulator.config.loader import DEFAULT_SCENARIO, apply_overrides, parse_set, scenario_from_dict
from simulator.config.scenario import Scenario
from simulator.errors import InputError

from simulator.dashboard.charts import binned_series, ecdf
from simulator.dashboard.scenario_form import widget_field
from simulator.dashboard.scenario_io import (cli_overrides, default_scenario, error_line, fmt_count, fmt_seconds, save_upload,
                            scenario_from_params, scenario_from_yaml, scenario_yaml, url_params)
from simulator.dashboard.state import all_widget_values, from_widgets

VARIANTS = {
    "default": {},
    "deployment": {"deployment.tp": 2, "deployment.replicas": 3, "deployment.gpu": "h200-sxm",
                   "deployment.weight_dtype": "fp8", "deployment.batching.policy": "static",
                   "deployment.kv_cache.num_blocks": 5000, "deployment.router": "least_kv",
                   "deployment.max_outstanding_per_replica": 64},
    "gamma": {"workload.arrival": {"process": "gamma", "rate": 3.0, "cv": 2.5}},
    "closed loop": {"workload.arrival": {"process": "closed_loop", "concurrency": 8, "think_time_s": 1.5,
                                         "think_time_dist": "exponential"}},
    "offline": {"workload.arrival": {"process": "offline"}},
    "lengths": {"workload.prompt_tokens": {"dist": "uniform", "low": 10, "high": 90},
                "workload.output_tokens": {"dist": "normal", "mean": 50.0, "std": 5.0, "max": 80}},
    "sigma": {"workload.prompt_tokens": {"dist": "lognormal", "median": 500.0, "sigma": 0.7},
              "workload.output_tokens": {"dist": "fixed", "value": 7, "min": 2}},
    "no SLOs": {"slo.ttft_s": None, "slo.tpot_s": None, "slo.e2e_s": 30.0},
    "segments": {"workload.arrival": {"process": "poisson", "segments": [{"duration_s": 10, "rate": 2},
                                                                         {"duration_s": 5, "rate": 9}]}},
    "diurnal": {"workload.arrival": {"process": "constant", "diurnal": {"mean_rate": 4.0, "amplitude": 0.5,
                                                                        "period_s": 60.0}}},
}


def variant(name: str) -> Scenario:
    return scenario_from_dict(apply_overrides(DEFAULT_SCENARIO, VARIANTS[name]))


@pytest.mark.parametrize("name", VARIANTS)
def test_widgets_round_trip(name):
    s = variant(name)
    values, kept = all_widget_values(s)
    assert scenario_from_dict(from_widgets(values, kept)) == s
    assert scenario_from_dict(from_widgets(values, kept, base=s)) == s


@pytest.mark.parametrize("name", VARIANTS)
def test_url_parameters_round_trip_and_are_cli_overrides(name):
    s = variant(name)
    params = url_params(s)
    assert scenario_from_params(params) == s
    # the same text works as `servesim run --set key=value`
    sets = parse_set([f"{k}={v}" for k, v in params.items()])
    assert scenario_from_dict(apply_overrides(DEFAULT_SCENARIO, sets)) == s
    assert cli_overrides(s).startswith("servesim run")


@pytest.mark.parametrize("name", VARIANTS)
def test_yaml_text_round_trips(name):
    s = variant(name)
    assert scenario_from_yaml(scenario_yaml(s)) == s


def test_default_scenario_has_an_empty_url_and_edits_are_short():
    assert url_params(default_scenario()) == {}
    assert url_params(variant("gamma")) == {"workload.arrival": "{cv: 2.5, process: gamma, rate: 3.0}"}
    assert url_params(variant("no SLOs")) == {"slo.ttft_s": "null", "slo.tpot_s": "null", "slo.e2e_s": "30.0"}


def test_switched_off_slo_survives_the_yaml_file():
    text = scenario_yaml(variant("no SLOs"))
    assert yaml.safe_load(text)["slo"]["ttft_s"] is None
    assert scenario_from_yaml(text).slo.ttft_s is None


def test_fields_without_a_widget_are_kept_from_the_base():
    base = variant("deployment")
    values, kept = all_widget_values(base)
    values["deployment.tp"] = 4
    out = scenario_from_dict(from_widgets(values, kept, base=base))
    assert out.deployment.tp == 4 and out.deployment.router == "least_kv"


def test_time_varying_rate_is_kept_or_replaced():
    s = variant("segments")
    values, kept = all_widget_values(s)
    assert values["workload.arrival.rate_mode"] == "time-varying"
    assert scenario_from_dict(from_widgets(values, kept)).workload.arrival.segments is not None
    values["workload.arrival.rate_mode"], values["workload.arrival.rate"] = "constant", 5.0
    a = scenario_from_dict(from_widgets(values, kept)).workload.arrival
    assert (a.rate, a.segments) == (5.0, None)


def test_bad_inputs_give_one_line_errors_naming_the_field():
    with pytest.raises(InputError) as e:
        scenario_from_yaml("deployment: {tp: [")
    assert error_line(e.value)[1].startswith("scenario file: got 'line 1, column")
    with pytest.raises(InputError):
        scenario_from_params({"deployment.tp": "0"})
    with pytest.raises(ValidationError) as v:
        Scenario.model_validate({"workload": {"arrival": {"process": "offline"}, "requests": 1,
                                              "prompt_tokens": {"dist": "fixed", "value": 1},
                                              "output_tokens": {"dist": "fixed", "value": 1}}, "bogus": 1})
    field, msg = error_line(v.value)
    assert field == "bogus" and "\n" not in msg


@pytest.mark.parametrize("field,message,widget", [
    ("tp", "tp: got 3; must divide", "deployment.tp"),
    ("weight_dtype", "weight_dtype: got 'fp8'", "deployment.weight_dtype"),
    ("scenario", "scenario: got '{...}'; deployment.batching.max_batched_tokens (8) must be at least",
     "deployment.batching.max_batched_tokens"),
    ("config.json:hidden_size", "config.json:hidden_size: got None; required", "model"),
    ("workload.arrival.rate", "workload.arrival.rate: got -1", "workload.arrival.rate"),
    ("", "something unrelated", ""),
])
def test_errors_are_placed_under_the_widget_they_name(field, message, widget):
    assert widget_field(field, message) == widget


def test_uploads_are_content_addressed(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    a = save_upload("config.json", b'{"a": 1}', "models")
    b = save_upload("config.json", b'{"a": 1}', "models")
    c = save_upload("config.json", b'{"a": 2}', "models")
    assert a == b != c and a.read_bytes() == b'{"a": 1}'
    assert a.name.startswith("uploaded-") and a.suffix == ".json"


def test_formats():
    assert fmt_seconds(0.0377) == "37.7 ms" and fmt_seconds(1.644) == "1.64 s" and fmt_seconds(None) == "n/a"
    assert fmt_count(9.53e8) == "953M" and fmt_count(1.66e9) == "1.66B" and fmt_count(None) == "never"


def test_ecdf_is_monotone_and_ends_at_one():
    rng = np.random.default_rng(1)
    x = rng.exponential(size=5000)
    df = ecdf({"a": np.append(x, np.nan), "b": x[:10]}, points=200)
    for _, g in df.groupby("config"):
        assert np.all(np.diff(g["value"]) >= 0) and np.all(np.diff(g["fraction"]) > 0)
        assert g["fraction"].iloc[-1] == 1.0
    a = df[df["config"] == "a"]
    assert len(a) <= 200 and a["value"].max() == x.max()
    # the median of the sampled CDF is the sample median within the sampling step
    assert np.interp(0.5, a["fraction"], a["value"]) == pytest.approx(np.median(x), rel=0.02)
    assert len(df[df["config"] == "b"]) == 10


def test_binned_series_conserves_time_integrals():
    rng = np.random.default_rng(2)
    rows = []
    for rep in range(2):
        t = 0.0
        for _ in range(300):
            t += rng.exponential(0.05)               # idle gap
            dur = rng.exponential(0.2)
            rows.append({"t_start_s": t, "t_s": t + dur, "replica": rep, "running": rng.integers(1, 40),
                         "waiting": rng.integers(0, 5), "kv_used_fraction": rng.random()})
            t += dur
    ts = pd.DataFrame(rows)
    b = binned_series(ts, bins=57)
    width = b["t_s"].iloc[1] - b["t_s"].iloc[0]
    dur = ts["t_s"] - ts["t_start_s"]
    for col in ("running", "waiting"):           # summed over replicas: same area under the curve
        assert (b[col] * width).sum() == pytest.approx((ts[col] * dur).sum())
    assert (b["kv_used_fraction"] * width).sum() == pytest.approx((ts["kv_used_fraction"] * dur).sum() / 2)
    assert math.isclose(b["t_s"].iloc[-1] + width / 2, ts["t_s"].max())
