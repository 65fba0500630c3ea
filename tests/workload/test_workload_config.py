"""The workload config: YAML shape, discriminated unions, and validation messages."""
from __future__ import annotations

import math

import pydantic
import pytest
import yaml

from simulator.workload import (
    ClosedLoopArrival,
    GammaArrival,
    LognormalLength,
    PoissonArrival,
    TraceArrival,
    UniformLength,
    WorkloadConfig,
)

SCENARIO_YAML = """
workload:
  arrival: {process: poisson, rate: 10.0}
  requests: 2000
  prompt_tokens: {dist: fixed, value: 512}
  output_tokens: {dist: fixed, value: 128}
"""


def _errors(data: dict) -> list[dict]:
    with pytest.raises(pydantic.ValidationError) as info:
        WorkloadConfig.model_validate(data)
    return info.value.errors()


def _base(**over: object) -> dict:
    data: dict = {
        "arrival": {"process": "poisson", "rate": 10.0},
        "requests": 100,
        "prompt_tokens": {"dist": "fixed", "value": 512},
        "output_tokens": {"dist": "fixed", "value": 128},
    }
    data.update(over)
    return data


def test_scenario_yaml_parses() -> None:
    cfg = WorkloadConfig.model_validate(yaml.safe_load(SCENARIO_YAML)["workload"])
    assert isinstance(cfg.arrival, PoissonArrival)
    assert cfg.arrival.rate == 10.0 and cfg.requests == 2000
    assert cfg.prompt_tokens is not None and cfg.prompt_tokens.dist == "fixed"
    assert cfg.prompt_tokens.value == 512  # type: ignore[union-attr]


def test_every_process_and_dist_parses() -> None:
    arrivals = [
        {"process": "poisson", "segments": [{"duration_s": 60, "rate": 5}, {"duration_s": 60, "rate": 20}]},
        {"process": "poisson", "diurnal": {"mean_rate": 10, "amplitude": 0.5, "period_s": 86400, "phase_s": 0}},
        {"process": "gamma", "rate": 3, "cv": 2.5},
        {"process": "gamma", "cv": 2, "segments": [{"duration_s": 1, "rate": 1}], "after_segments": "hold"},
        {"process": "constant", "rate": 4},
        {"process": "offline"},
        {"process": "closed_loop", "concurrency": 8, "think_time_s": 1.5, "think_time_dist": "exponential"},
    ]
    lengths = [
        {"dist": "fixed", "value": 1},
        {"dist": "uniform", "low": 1, "high": 10, "max": 5},
        {"dist": "normal", "mean": 100, "std": 10, "min": 50},
        {"dist": "lognormal", "median": 100, "sigma": 0.5},
        {"dist": "lognormal", "mean": 211, "p50": 129},
        {"dist": "empirical", "path": "x.csv", "column": "ContextTokens"},
    ]
    for arrival in arrivals:
        for length in lengths:
            cfg = WorkloadConfig.model_validate(_base(arrival=arrival, prompt_tokens=length))
            assert cfg.arrival.process == arrival["process"]
            assert cfg.prompt_tokens is not None and cfg.prompt_tokens.dist == length["dist"]


def test_trace_needs_no_lengths_or_count() -> None:
    cfg = WorkloadConfig.model_validate({"arrival": {"process": "trace", "path": "t.jsonl"}})
    assert isinstance(cfg.arrival, TraceArrival)
    assert cfg.arrival.format == "auto" and cfg.arrival.speedup == 1.0
    assert cfg.requests is None and cfg.prompt_tokens is None


def test_missing_lengths_named() -> None:
    errs = _errors({"arrival": {"process": "poisson", "rate": 1}, "requests": 5})
    assert "prompt_tokens, output_tokens required" in errs[0]["msg"]


@pytest.mark.parametrize(
    ("arrival", "loc", "text"),
    [
        ({"process": "poisson", "rate": -1}, ("arrival", "poisson", "rate"), "greater than 0"),
        ({"process": "gamma", "rate": 1, "cv": 0}, ("arrival", "gamma", "cv"), "greater than 0"),
        ({"process": "poisson"}, ("arrival", "poisson"), "exactly one of rate, segments, diurnal"),
        ({"process": "poisson", "rate": 1, "diurnal": {"mean_rate": 1, "amplitude": 0}}, ("arrival", "poisson"), "got rate, diurnal"),
        ({"process": "poisson", "diurnal": {"mean_rate": 1, "amplitude": 1.5}}, ("arrival", "poisson", "diurnal", "amplitude"), "less than or equal to 1"),
        ({"process": "poisson", "segments": [{"duration_s": 1, "rate": 0}]}, ("arrival", "poisson"), "at least one segment"),
        ({"process": "poisson", "segments": [{"duration_s": 1, "rate": 1}, {"duration_s": 1, "rate": 0}], "after_segments": "hold"}, ("arrival", "poisson"), "last segment needs rate > 0"),
        ({"process": "closed_loop", "concurrency": 0}, ("arrival", "closed_loop", "concurrency"), "greater than or equal to 1"),
        ({"process": "trace", "path": "a.csv", "speedup": 0}, ("arrival", "trace", "speedup"), "greater than 0"),
        ({"process": "bursty"}, ("arrival",), "does not match any of the expected tags"),
    ],
)
def test_arrival_errors_name_the_field(arrival: dict, loc: tuple, text: str) -> None:
    errs = _errors(_base(arrival=arrival))
    assert errs[0]["loc"][: len(loc)] == loc
    assert text in errs[0]["msg"]


@pytest.mark.parametrize(
    ("length", "loc", "text"),
    [
        ({"dist": "fixed", "value": 0}, ("prompt_tokens", "fixed", "value"), "greater than or equal to 1"),
        ({"dist": "uniform", "low": 10, "high": 5}, ("prompt_tokens", "uniform"), "low (10) must be <= high (5)"),
        ({"dist": "fixed", "value": 5, "min": 9, "max": 3}, ("prompt_tokens", "fixed"), "min (9) must be <= max (3)"),
        ({"dist": "lognormal", "median": 10}, ("prompt_tokens", "lognormal"), "exactly one of sigma, mean"),
        ({"dist": "lognormal", "median": 10, "p50": 10, "sigma": 1}, ("prompt_tokens", "lognormal"), "exactly one of median, p50"),
        ({"dist": "lognormal", "mean": 5, "p50": 10}, ("prompt_tokens", "lognormal"), "must be >= the median"),
        ({"dist": "normal", "mean": 10, "std": -1}, ("prompt_tokens", "normal", "std"), "greater than or equal to 0"),
        ({"dist": "fixed", "value": 5, "maximum": 3}, ("prompt_tokens", "fixed", "maximum"), "Extra inputs are not permitted"),
    ],
)
def test_length_errors_name_the_field(length: dict, loc: tuple, text: str) -> None:
    errs = _errors(_base(prompt_tokens=length))
    assert errs[0]["loc"][: len(loc)] == loc
    assert text in errs[0]["msg"]


def test_unknown_top_level_key_rejected() -> None:
    errs = _errors(_base(request=5))
    assert errs[0]["loc"] == ("request",) and errs[0]["type"] == "extra_forbidden"


def test_lognormal_sigma_from_mean_and_median() -> None:
    cfg = LognormalLength(dist="lognormal", mean=1155, p50=1020)
    # mean = median * exp(sigma^2 / 2)  ->  sigma = sqrt(2 ln(1155/1020)) = 0.49861...
    assert cfg.median_tokens == 1020
    assert cfg.log_sigma == pytest.approx(math.sqrt(2 * math.log(1155 / 1020)))
    assert cfg.log_sigma == pytest.approx(0.4986, abs=1e-4)


def test_mean_rate_of_rate_specs() -> None:
    seg = [{"duration_s": 60, "rate": 5}, {"duration_s": 20, "rate": 25}]
    assert PoissonArrival(process="poisson", segments=seg).mean_rate == pytest.approx((300 + 500) / 80)
    assert PoissonArrival(process="poisson", segments=seg, after_segments="hold").mean_rate == 25
    assert GammaArrival(process="gamma", rate=3, cv=2).mean_rate == 3


def test_configs_are_frozen() -> None:
    cfg = ClosedLoopArrival(process="closed_loop", concurrency=4)
    with pytest.raises(pydantic.ValidationError):
        cfg.concurrency = 5  # type: ignore[misc]
    assert UniformLength(dist="uniform", low=1, high=2).model_dump()["high"] == 2
