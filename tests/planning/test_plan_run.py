"""The planner's results do not depend on how many simulations run at once."""
from __future__ import annotations

import pytest

from simulator.config.loader import scenario_from_dict
from simulator.planning.plan_executor import plan_executor
from simulator.planning.planner import PlanSettings, plan
from simulator.planning.search import replay

from .conftest import PLAN


def _strip(res):
    counts = {k: v for k, v in res["counts"].items() if k not in ("wall_s", "screen_s")}
    return res["plans"], res["rejected"], res["pareto"], res["layouts"], counts


@pytest.mark.parametrize("points", [1, 2])     # bisection; two probes per round, run at once
def test_one_and_two_workers_give_identical_results(points):
    s = scenario_from_dict(PLAN)
    kw = dict(search_points=points, target_rate=30.0, gpus=("h100-sxm", "a100-sxm-80gb", "l40s"), tp=(1, 2), pp=(1,),
              weight_dtypes=("bf16", "fp8"), max_batch_sizes=(64, 256), max_batched_tokens=(8192,), requests=200,
              rel_tol=0.1)
    one = plan(s, PlanSettings(workers=1, **kw))
    two = plan(s, PlanSettings(workers=2, **kw))
    assert one["counts"]["pruned_by_cost"] > 0 and one["plans"]          # pruning is exercised
    assert _strip(one) == _strip(two)


def test_replay_prunes_at_the_first_check_the_lower_cap_fails():
    trace = [(0, 0.0, 8.0, 8.0), (1, 4.0, 8.0, 8.0), (2, 4.0, 6.0, 6.0)]
    # target 12 req/s, $10 per replica: tops 8, 8, 6 need 2, 2, 2 replicas = $20
    assert replay(trace, 12.0, 10.0, None) is None
    assert replay(trace, 12.0, 10.0, 25.0) is None
    cut = replay(trace, 12.0, 10.0, 15.0)
    assert cut.status == "pruned" and cut.evaluations == 0 and cut.replicas_needed == 2


def test_inline_executor_runs_the_function():
    with plan_executor("local", 1, abs) as submit:
        assert submit(-3).result() == 3
