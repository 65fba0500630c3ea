"""Sweep files: axis expansion, filters (a safe grammar), counts, limits and validation."""
from __future__ import annotations

import math

import pytest

from simulator.errors import InputError, ServesimError
from simulator.planning.filters import Filter
from simulator.planning.sweep import (GeomAxis, RangeAxis, SweepSpec, axis_values, count_points, expand,
                                      load_sweep, point_key)

from .conftest import TINY


def spec(axes, **kw):
    return SweepSpec(base=TINY, axes=axes, **kw)


def test_range_includes_stop_on_a_step_and_cleans_floats():
    assert axis_values("r", RangeAxis(range=(2, 14, 4))) == [2, 6, 10, 14]
    assert axis_values("r", RangeAxis(range=(2, 13, 4))) == [2, 6, 10]
    # 0.1 steps: no 0.30000000000000004
    assert axis_values("r", RangeAxis(range=(0.1, 0.5, 0.1))) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert axis_values("r", RangeAxis(range=(10, 4, -3))) == [10, 7, 4]


def test_geomspace_integer_ends_give_integers():
    assert axis_values("b", GeomAxis(geomspace=(16, 256, 3))) == [16, 64, 256]
    assert axis_values("b", GeomAxis(geomspace=(1, 256, 9))) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    vals = axis_values("r", GeomAxis(geomspace=(0.5, 8.0, 5)))
    assert vals == pytest.approx([0.5, 1.0, 2.0, 4.0, 8.0])


def test_empty_axis_and_empty_axes_are_errors():
    with pytest.raises(InputError, match=r"axes\.deployment\.tp"):
        axis_values("deployment.tp", [])
    with pytest.raises(InputError, match="at least one value"):
        axis_values("r", RangeAxis(range=(5, 1, 1)))
    with pytest.raises(InputError, match="at least one axis"):
        expand(spec({}), TINY)


def test_product_count_filters_and_replications():
    s = spec({"deployment.tp": [1, 2, 4, 8], "workload.arrival.rate": {"range": [1, 5, 1]}},
             filters=["deployment.tp * deployment.pp <= 4", "workload.arrival.rate != 3"], replications=2)
    assert count_points(s) == 4 * 5 * 2
    ex = expand(s, TINY)
    # tp in {1,2,4} (pp defaults to 1) x rates {1,2,4,5} x 2 seeds
    assert len(ex.points) == 3 * 4 * 2
    assert ex.filtered_out == 4 * 5 - 3 * 4
    assert {p.axes["deployment.tp"] for p in ex.points} == {1, 2, 4}
    assert {p.scenario.seed for p in ex.points} == {1, 2}
    assert len({p.key for p in ex.points}) == len(ex.points)
    # the first axis varies slowest
    assert [p.axes["deployment.tp"] for p in ex.points[:8]] == [1] * 8


def test_point_key_is_a_content_hash():
    ex = expand(spec({"workload.arrival.rate": [3, 4]}), TINY)
    again = expand(spec({"workload.arrival.rate": [4, 3]}), TINY)
    assert {p.key for p in ex.points} == {p.key for p in again.points}
    assert point_key(ex.points[0].scenario) != point_key(ex.points[1].scenario)


def test_duplicate_scenarios_run_once():
    ex = expand(spec({"workload.arrival.rate": [3, 3.0, 4]}), TINY)
    assert len(ex.points) == 2 and ex.duplicates == 1


def test_max_points_limit():
    s = spec({"workload.arrival.rate": {"range": [1, 30, 1]}})
    with pytest.raises(InputError, match="more than 10 points"):
        expand(s, TINY, max_points=10)
    assert len(expand(s, TINY, max_points=None).points) == 30


def test_invalid_points_are_reported_with_the_field():
    ex = expand(spec({"deployment.tp": [1, 3], "deployment.gpu": ["h100-sxm", "h100-sxmm"]}), TINY)
    assert len(ex.points) == 1
    problems = [msg for _, msg in ex.invalid]
    assert any(m.startswith("tp:") and "divide" in m for m in problems)
    assert any(m.startswith("gpu:") and "did you mean h100-sxm" in m for m in problems)
    ex = expand(spec({"deployment.batching.max_batch_size": [0, 8]}), TINY)
    assert len(ex.points) == 1 and "deployment.batching.max_batch_size" in ex.invalid[0][1]


@pytest.mark.parametrize("expr,values,expected", [
    ("deployment.tp <= 4", {"deployment.tp": 4}, True),
    ("deployment.tp <= 4", {"deployment.tp": 8}, False),
    ("1 < deployment.tp < 8", {"deployment.tp": 4}, True),
    ("model in ['a', 'b'] and not seed == 2", {"model": "b", "seed": 1}, True),
    ("model not in ['a', 'b'] or deployment.tp % 2 == 0", {"model": "a", "deployment.tp": 3}, False),
    ("deployment.tp * deployment.pp // 2 >= -1 + 2", {"deployment.tp": 2, "deployment.pp": 1}, True),
    ("deployment.batching.chunked_prefill == false", {"deployment.batching.chunked_prefill": False}, True),
])
def test_filter_grammar(expr, values, expected):
    assert Filter(expr)(values) is expected


@pytest.mark.parametrize("expr", [
    "__import__('os').system('true')", "open('x')", "deployment.tp.__class__ == 1", "[x for x in y]",
    "lambda: 1", "a if b else c", "x[0] == 1", "deployment.tp ** 2 > 1", "a = 1", "",
])
def test_filter_rejects_anything_outside_the_grammar(expr):
    with pytest.raises(InputError, match=r"filters"):
        Filter(expr)


def test_filter_unknown_key_names_it():
    with pytest.raises(InputError, match="'deployment.tpp' is not a scenario key"):
        expand(spec({"deployment.tp": [1]}, filters=["deployment.tpp < 2"]), TINY)


def test_load_sweep_resolves_base_file(tmp_path, write_yaml):
    (tmp_path / "scen").mkdir()
    write_yaml("scen/base.yaml", TINY)
    p = write_yaml("s.yaml", {"base_file": "scen/base.yaml", "axes": {"seed": [1, 2]}})
    s, base = load_sweep(p)
    assert base["model"] == TINY["model"] and len(expand(s, base).points) == 2
    bad = write_yaml("bad.yaml", {"base": TINY, "base_file": "x.yaml", "axes": {"seed": [1]}})
    with pytest.raises(ServesimError, match="exactly one of base"):
        load_sweep(bad)
    unknown = write_yaml("unk.yaml", {"base": TINY, "axes": {"seed": [1]}, "axis": {}})
    with pytest.raises(ServesimError, match="axis: unknown key"):
        load_sweep(unknown)


def test_count_points_is_the_product():
    s = spec({"a.b": [1, 2, 3], "c": {"geomspace": [1, 1000, 4]}, "d": {"range": [0, 1, 0.25]}}, replications=3)
    assert count_points(s) == 3 * 4 * 5 * 3 == math.prod([3, 4, 5, 3])
