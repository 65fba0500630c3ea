"""The planner on small candidate sets whose answers can be checked by hand or by re-simulation."""
from __future__ import annotations

import json
import math

import pytest

from simulator.cli import main
from simulator.config import scenario_from_dict
from simulator.planning.candidates import Candidate
from simulator.planning.planner import PlanSettings, pareto_front, plan
from simulator.planning.prices import load_prices
from simulator.planning.search import min_window, probe

from .conftest import PLAN

SMALL = dict(gpus=("h100-sxm", "a100-sxm-80gb"), tp=(1, 2), pp=(1,), weight_dtypes=("bf16", "fp8"),
             max_batch_sizes=(256,), max_batched_tokens=(8192,), requests=200, rel_tol=0.1, kinds=("aggregated",))


@pytest.fixture(scope="module")
def exhaustive():
    s = scenario_from_dict(PLAN)
    st = PlanSettings(target_rate=150.0, exhaustive=True, stop_when_replicas_decided=False, **SMALL)
    return s, st, plan(s, st)


def test_rows_follow_from_rate_price_and_target(exhaustive):
    s, st, res = exhaustive
    book = load_prices()
    rows = res["plans"]
    assert rows and [r["cost_per_hour"] for r in rows] == sorted(r["cost_per_hour"] for r in rows)
    for r in rows:
        d = r["deployment"]
        price = book.offer(d["gpu"]).usd_per_gpu_hour
        assert r["replicas"] == math.ceil(150.0 / r["max_rate_per_replica"])
        assert r["gpus"] == r["replicas"] * d["tp"] * d["pp"]
        assert r["cost_per_hour"] == pytest.approx(r["gpus"] * price)
        # every request has 64 output tokens: 150 req/s -> 150*64*3600 output tokens an hour
        assert r["cost_per_million_output_tokens"] == pytest.approx(r["cost_per_hour"] / (150 * 64 * 3600) * 1e6)
        assert r["slo_attainment"] >= 0.99 and r["operating_rate_per_replica"] == pytest.approx(150 / r["replicas"])
        assert {"deployment", "max_rate_per_replica", "replicas", "gpus", "cost_per_hour",
                "cost_per_million_output_tokens", "ttft_p99", "tpot_p99", "slo_attainment"} <= set(r)
    reasons = {(x["deployment"]["gpu"], x["deployment"]["weight_dtype"]): x["reason"] for x in res["rejected"]}
    assert reasons == {("a100-sxm-80gb", "fp8"): "unsupported"}       # A100 has no fp8 tensor cores
    assert len(rows) == 6 and res["counts"]["candidates"] == 8


def test_max_rate_is_verified_by_resimulation(exhaustive):
    s, st, res = exhaustive
    r = res["plans"][0]
    cand = scenario_from_dict(PLAN, Candidate(**r["deployment"]).overrides())
    window = min_window(cand, st.rel_tol)
    lo, hi = r["rate_bracket"]
    assert probe(cand, lo, 200, window_s=window).feasible(0.99)
    assert not probe(cand, hi, 200, window_s=window).feasible(0.99)
    assert hi - lo <= 0.1 * hi


def test_doubling_the_target_doubles_the_load_not_the_rates(exhaustive):
    s, st, res = exhaustive
    twice = plan(s, st.model_copy(update={"target_rate": 300.0}))
    by = {r["candidate"]: r for r in res["plans"]}
    for r in twice["plans"]:
        assert r["max_rate_per_replica"] == by[r["candidate"]]["max_rate_per_replica"]
        assert r["replicas"] == math.ceil(300.0 / r["max_rate_per_replica"])


def test_pareto_front_is_the_set_of_undominated_rows(exhaustive):
    rows = exhaustive[2]["plans"]
    front = exhaustive[2]["pareto"]
    keys = ("cost_per_hour", "ttft_p99", "tpot_p99")

    def dominates(a, b):
        return all(a[k] <= b[k] for k in keys) and any(a[k] < b[k] for k in keys)
    for r in rows:
        assert (r in front) == (not any(dominates(o, r) for o in rows))
    assert pareto_front([{"cost_per_hour": 1, "ttft_p99": 2, "tpot_p99": 1},
                         {"cost_per_hour": 2, "ttft_p99": 1, "tpot_p99": 1},
                         {"cost_per_hour": 2, "ttft_p99": 2, "tpot_p99": 1}]) == [
        {"cost_per_hour": 1, "ttft_p99": 2, "tpot_p99": 1}, {"cost_per_hour": 2, "ttft_p99": 1, "tpot_p99": 1}]


def test_pruning_reasons():
    s = scenario_from_dict(PLAN, {"model": "qwen3-14b"})      # 40 attention heads, ~28 GiB of bf16 weights
    st = PlanSettings(target_rate=20.0, gpus=("l4", "h100-sxm"), tp=(1, 3), pp=(1,), weight_dtypes=("bf16",), kinds=("aggregated",),
                      max_batch_sizes=(256,), max_batched_tokens=(8192,), requests=200, rel_tol=0.1)
    res = plan(s, st)
    why = {x["candidate"]: x for x in res["rejected"]}
    for gpu in ("l4", "h100-sxm"):
        assert why[f"{gpu} tp3 pp1 bf16 b256/t8192"]["reason"] == "unsupported"
        assert "must divide qwen3-14b's 40 attention heads" in why[f"{gpu} tp3 pp1 bf16 b256/t8192"]["detail"]
    assert why["l4 tp1 pp1 bf16 b256/t8192"]["reason"] == "does not fit"
    assert [r["candidate"] for r in res["plans"]] == ["h100-sxm tp1 pp1 bf16 b256/t8192"]


def test_cost_bound_prunes_expensive_candidates():
    s = scenario_from_dict(PLAN)
    st = PlanSettings(target_rate=20.0, gpus=("h100-sxm",), tp=(1, 8), pp=(1,), weight_dtypes=("bf16",), kinds=("aggregated",),
                      max_batch_sizes=(256,), max_batched_tokens=(8192,), requests=200, rel_tol=0.1)
    res = plan(s, st)
    assert [r["candidate"] for r in res["plans"]] == ["h100-sxm tp1 pp1 bf16 b256/t8192"]
    (tp8,) = res["rejected"]
    assert tp8["reason"] == "pruned by cost" and "more than 1.5x the best plan" in tp8["detail"]


def test_unreachable_slo_and_max_gpus_bind(capsys, tmp_path):
    s = scenario_from_dict(PLAN, {"slo.ttft_s": 0.001})
    st = PlanSettings(target_rate=20.0, **SMALL)
    res = plan(s, st)
    assert not res["plans"] and res["binding"].startswith("the SLO binds: ttft_s")
    assert all(x["reason"] in ("SLO unreachable at any rate", "unsupported") for x in res["rejected"])
    scen = tmp_path / "s.yaml"
    scen.write_text(json.dumps(PLAN))
    code = main(["plan", str(scen), "--target-rate", "2000", "--max-gpus", "4", "--gpus", "h100-sxm",
                 "--tp", "1,2", "--pp", "1", "--batch-sizes", "256", "--batched-tokens", "8192", "--requests", "200",
                 "--workers", "1", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("servesim: error: no candidate can reach 2000 req/s: --max-gpus binds")
    assert "rejected:" in out                      # the partial results are printed first


def test_probability_of_meeting_the_slo_with_replications():
    s = scenario_from_dict(PLAN)
    st = PlanSettings(target_rate=40.0, gpus=("h100-sxm",), tp=(1,), pp=(1,), weight_dtypes=("bf16",), kinds=("aggregated",),
                      max_batch_sizes=(256,), max_batched_tokens=(8192,), requests=200, rel_tol=0.1, replications=4)
    (row,) = plan(s, st)["plans"]
    assert row["replication_seeds"] == [2, 3, 4, 5]       # fresh seeds: not the search's seed 1
    lo, hi = row["p_meet_slo_ci"]
    assert 0 <= lo <= row["p_meet_slo"] <= hi <= 1 and row["p_meet_slo"] * 4 == int(row["p_meet_slo"] * 4)


def test_plan_cli_json_and_workers(capsys, tmp_path):
    scen = tmp_path / "s.yaml"
    scen.write_text(json.dumps(PLAN))
    code = main(["plan", str(scen), "--target-rate", "100", "--gpus", "h100-sxm,a100-sxm-80gb", "--tp", "1",
                 "--pp", "1", "--batch-sizes", "256", "--batched-tokens", "8192", "--dtypes", "bf16",
                 "--requests", "200", "--workers", "2", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert code == 0 and res["plans"] and set(res) >= {"plans", "pareto", "rejected", "counts"}
    assert main(["plan", str(scen), "--target-rate", "-1"]) == 2
    assert capsys.readouterr().err.startswith("servesim: error: --target-rate: got -1.0")
    assert main(["plan", str(scen), "--target-rate", "5", "--tp", "x"]) == 2
    assert "--tp: got 'x'" in capsys.readouterr().err
