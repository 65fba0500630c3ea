"""Sweep files cannot ask for unbounded work: axes, replications, combinations and filters are capped."""
from __future__ import annotations

import time

import pytest

from simulator.errors import InputError
from simulator.planning.filters import Filter
from simulator.planning.sweep import SweepSpec, expand
from simulator.config.loader import DEFAULT_SCENARIO


def _spec(**kw) -> SweepSpec:
    return SweepSpec.model_validate({"base": DEFAULT_SCENARIO, **kw})


def test_geomspace_count_is_capped():
    with pytest.raises(InputError, match="geomspace gives more than"):
        expand(_spec(axes={"workload.arrival.rate": {"geomspace": [16, 256, 1_000_000_000]}}), DEFAULT_SCENARIO)


def test_replications_are_capped():
    with pytest.raises(Exception, match="replications"):
        _spec(axes={"seed": [1]}, replications=1_000_000_000)


def test_filtered_out_combinations_count_too():
    spec = _spec(axes={"seed": {"range": [0, 999_999, 1]}, "name": {"range": [0, 999_999, 1]}}, filters=["seed < 0"])
    t = time.monotonic()
    with pytest.raises(InputError, match="at most 10,000,000 combinations"):
        expand(spec, DEFAULT_SCENARIO)
    assert time.monotonic() - t < 30


@pytest.mark.parametrize("text", ['"a" * 4000000000 == "b"', "[0] * 3000000000 == []", "3000000000 * [0] == []"])
def test_filter_repetition_is_bounded(text):
    with pytest.raises(InputError, match="repeats a string or list"):
        Filter(text)({})


@pytest.mark.parametrize("text", ["+".join(["1"] * 100_000) + " > 0", "(" * 999 + "1" + ")" * 999 + " > 0"])
def test_long_or_deep_filters_are_refused(text):
    with pytest.raises(InputError):
        Filter(text)({})


def test_deep_filter_evaluates_or_is_refused_never_crashes():
    text = "+".join(["1"] * 900) + " > 0"
    try:
        assert Filter(text)({}) is True
    except InputError as err:
        assert "too" in str(err)


def test_inf_in_range_axis_is_refused():
    with pytest.raises(Exception, match="finite"):
        _spec(axes={"seed": {"range": [0, float("inf"), 1]}})
