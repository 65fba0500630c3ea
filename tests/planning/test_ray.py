"""The Ray executor on a local Ray instance (skipped when ray is not installed)."""
from __future__ import annotations

import logging
import os

import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="ray (extra 'ray') is not installed")

from simulator.planning.runner import run_sweep  # noqa: E402
from simulator.planning.sweep import SweepSpec  # noqa: E402

from simulator.config.loader import scenario_from_dict  # noqa: E402
from simulator.planning.planner import PlanSettings, plan  # noqa: E402

from .conftest import PLAN, TINY  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    os.environ.pop("RAY_ADDRESS", None)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


def test_ray_runs_the_points_like_the_local_executor(local_ray, tmp_path):
    spec = SweepSpec(base=TINY, axes={"workload.arrival.rate": [2, 30], "deployment.tp": [1, 2]})
    rep = run_sweep(spec, TINY, tmp_path / "ray", executor="ray", workers=2)
    assert rep.ran == 4 and rep.crashed is None
    on_ray = pd.read_parquet(tmp_path / "ray" / "results.parquet").set_index("point")
    assert on_ray["error"].isna().all()
    assert os.getpid() not in set(on_ray["pid"])          # the points ran in Ray workers
    assert len(list((tmp_path / "ray" / "points").glob("*.json"))) == 4
    run_sweep(spec, TINY, tmp_path / "local")
    local = pd.read_parquet(tmp_path / "local" / "results.parquet").set_index("point")
    cols = ["ttft_p99", "tpot_mean", "throughput_output_tokens_per_s", "slo_attainment", "mbu"]
    pd.testing.assert_frame_equal(on_ray.loc[local.index, cols], local[cols])
    # resuming with Ray skips what is done
    assert run_sweep(spec, TINY, tmp_path / "ray", executor="ray").ran == 0


def test_plan_on_ray_equals_one_worker(local_ray):
    kw = dict(target_rate=30.0, gpus=("h100-sxm", "a100-sxm-80gb"), tp=(1, 2), pp=(1,), weight_dtypes=("bf16",),
              max_batch_sizes=(256,), max_batched_tokens=(8192,), requests=200, rel_tol=0.1)
    s = scenario_from_dict(PLAN)
    one, on_ray = plan(s, PlanSettings(workers=1, **kw)), plan(s, PlanSettings(workers=2, executor="ray", **kw))
    drop = ("wall_s", "screen_s")
    assert one["plans"] and one["plans"] == on_ray["plans"] and one["rejected"] == on_ray["rejected"]
    assert {k: v for k, v in one["counts"].items() if k not in drop} == \
        {k: v for k, v in on_ray["counts"].items() if k not in drop}
