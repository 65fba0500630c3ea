"""Every GPU is a plan candidate: unpriced GPUs are simulated and ranked by GPUs; --price prices them;
the output names what was left out; progress ends at its total; pruning quotes the final best."""
from __future__ import annotations

import json

import pytest

from simulator.cli import main
from simulator.config import scenario_from_dict
from simulator.errors import InputError
from simulator.planning.candidates import Candidate, default_gpus
from simulator.planning.excluded import memory_binds
from simulator.planning.planner import PlanSettings, plan
from simulator.planning.prices import load_prices, parse_price

from .conftest import PLAN

ONE = dict(tp=(1,), pp=(1,), weight_dtypes=("bf16",), max_batch_sizes=(256,), max_batched_tokens=(8192,),
           requests=200, rel_tol=0.1, kinds=("aggregated",))


def test_default_gpus_are_the_whole_gpu_catalog():
    book = load_prices()
    gpus = default_gpus(book.gpus("on-demand"))
    assert {"h100-sxm", "h200-sxm", "b200", "mi300x", "mi325x", "gb200"} <= set(gpus)
    assert "b200" not in book.gpus("on-demand")               # simulated although it has no on-demand price
    assert "h200-sxm" in book.gpus("on-demand")               # Nebius on-demand price (2025-10-22)
    assert "epyc-9654" not in gpus and "apple-m3-max" not in gpus


def test_unpriced_gpu_is_simulated_ranked_after_priced_and_listed():
    s = scenario_from_dict(PLAN)
    res = plan(s, PlanSettings(target_rate=40.0, gpus=("h100-sxm", "b200"), **ONE))
    rows = {r["deployment"]["gpu"]: r for r in res["plans"]}
    assert set(rows) == {"h100-sxm", "b200"}
    b200 = rows["b200"]
    assert b200["cost_per_hour"] is None and b200["price"] is None and b200["slo_attainment"] >= 0.99
    assert res["plans"][-1] is b200                           # priced plans first
    assert [r["candidate"] for r in res["pareto"]] == [rows["h100-sxm"]["candidate"]]
    (line,) = res["excluded"]
    assert line.startswith("b200: no on-demand price;") and "--price b200=USD_PER_HOUR" in line
    # priced on the command line, it is ranked by dollars: GPUs x price
    priced = plan(s, PlanSettings(target_rate=40.0, gpus=("h100-sxm", "b200"), prices=("b200=0.5",), **ONE))
    top = priced["plans"][0]
    assert top["deployment"]["gpu"] == "b200" and top["cost_per_hour"] == pytest.approx(0.5 * top["gpus"])
    assert top["price"]["provider"] == "user"
    (line,) = priced["excluded"]                              # H100 at $3.78/h is now pruned by cost
    assert line.startswith("h100-sxm: no plan (pruned by cost 1); e.g.") and "the best plan ($0.50/h" in line


def test_gpu_without_a_plan_gets_one_line_with_its_reasons():
    s = scenario_from_dict(PLAN, {"model": "qwen3-14b"})      # ~28 GiB of bf16 weights: not on one L4
    res = plan(s, PlanSettings(target_rate=20.0, gpus=("l4", "h100-sxm"), **ONE))
    assert res["excluded"] == [f"l4: no plan (does not fit 1); e.g. l4 tp1 pp1 bf16 b256/t8192: "
                               f"{res['rejected'][0]['detail']}"]


def test_progress_ends_at_its_total_and_pruning_quotes_the_final_best():
    s = scenario_from_dict(PLAN)
    ticks: list[tuple[int, int]] = []
    st = PlanSettings(target_rate=20.0, gpus=("h100-sxm",), tp=(1, 2, 4, 8), pp=(1,), weight_dtypes=("bf16",), kinds=("aggregated",),
                      max_batch_sizes=(256,), max_batched_tokens=(8192,), requests=200, rel_tol=0.1)
    res = plan(s, st, progress=lambda d, t: ticks.append((d, t)))
    c = res["counts"]
    assert ticks[-1] == (c["screened_in"], c["screened_in"]) and c["searched"] + c["pruned_by_cost"] == c["screened_in"]
    pruned = [r for r in res["rejected"] if r["reason"] == "pruned by cost"]
    assert len(pruned) == c["pruned_by_cost"] >= 2
    best = res["plans"][0]
    for r in pruned:
        assert f"the best plan (${best['cost_per_hour']:.2f}/h, {best['candidate']})" in r["detail"]


def test_memory_verdict_names_what_was_tried_and_suggests_only_the_rest():
    cands = [Candidate("h100-sxm", tp, 1, dt, 256, 8192) for tp in (1, 2, 4) for dt in ("bf16", "fp8")]
    text = memory_binds(cands, PlanSettings(target_rate=1.0, max_gpus=4, gpus=("h100-sxm",)))
    assert text == ("memory binds: the model fits on none of the 6 candidates on h100-sxm with bf16, fp8 weights "
                    "and up to 4 GPUs per replica (raise --max-gpus, or try larger GPUs (--gpus))")
    assert "fp8" not in text.split("(", 1)[1]


def test_price_argument_errors_name_the_flag(capsys, tmp_path):
    assert parse_price("H200=3.5")[0] == "h200-sxm" or parse_price("h200-sxm=3.5")[0] == "h200-sxm"
    for bad in ("h200-sxm", "h200-sxm=-1", "h200-sxm=abc", "=2", "nope=2"):
        with pytest.raises(InputError, match=r"^--price: got"):
            parse_price(bad)
    scen = tmp_path / "s.yaml"
    scen.write_text(json.dumps(PLAN))
    assert main(["plan", str(scen), "--target-rate", "5", "--price", "h200-sxm=x", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("servesim: error: --price: got 'h200-sxm=x'") and err.count("\n") == 1
