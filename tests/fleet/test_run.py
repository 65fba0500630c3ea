"""Sharded runs on a local Ray instance, and ``servesim run --executor`` on the command line."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from simulator.cli import main
from simulator.engine.simulate import simulate
from simulator.errors import InputError
from simulator.fleet.run import simulate_sharded

from ..engine.conftest import make_scenario
from .conftest import assert_identical, latency_errors
from .test_coordinator import LEAST_OUTSTANDING_TOLERANCE

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False)
    yield ray
    ray.shutdown()


@needs_ray
def test_round_robin_on_ray_equals_the_single_process_run(local_ray) -> None:
    s = make_scenario(**{"deployment.replicas": 5, "workload.requests": 600, "workload.arrival.rate": 50.0,
                         "workload.prompt_tokens": {"dist": "uniform", "low": 16, "high": 1500}})
    res = simulate_sharded(s, "ray", 2)
    assert_identical(simulate(s), res)
    assert "2 shards (ray)" in res.notes[-1]


@needs_ray
def test_least_outstanding_on_ray_within_the_documented_bound(local_ray) -> None:
    s = make_scenario(**{"deployment.replicas": 8, "workload.requests": 2000, "workload.arrival.rate": 60.0,
                         "deployment.router": "least_outstanding", "seed": 1,
                         "workload.prompt_tokens": {"dist": "uniform", "low": 64, "high": 2048},
                         "workload.output_tokens": {"dist": "uniform", "low": 8, "high": 512}})
    a, b = simulate(s), simulate_sharded(s, "ray", 2)
    local = simulate_sharded(s, "local", 2)
    assert_identical(local, b)                                   # the executor does not change the routing
    errors = latency_errors(a, b)
    for key, tol in LEAST_OUTSTANDING_TOLERANCE.items():
        assert abs(errors[key]) <= tol, (key, errors)


def test_ray_missing_is_one_input_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)                # import ray raises ImportError
    with pytest.raises(InputError, match="ray is not installed") as e:
        simulate_sharded(make_scenario(**{"deployment.replicas": 2}), "ray", 2)
    assert e.value.field == "--executor"


def test_ray_missing_on_the_command_line_exits_2(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["run", "--executor", "ray", "--set", "deployment.replicas=2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--executor" in err[0] and "not installed" in err[0]


@pytest.mark.parametrize("args, field", [
    (["--executor", "foo"], "--executor"),
    (["--workers", "2"], "--workers"),
    (["--executor", "ray", "--set", "deployment.router=least_kv"], "deployment.router"),
    (["--executor", "ray", "--replications", "3"], "--executor"),
])
def test_bad_executor_input_is_one_line_exit_2(capsys, args: list[str], field: str) -> None:
    assert main(["run", "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"servesim: error: {field}:"), err
