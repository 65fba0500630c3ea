"""``servesim plan`` on one line: the scenario built from --model --rate --isl --osl --ttft --tpot --engine."""
from __future__ import annotations

import json

import pytest

from simulator.cli import main

from .conftest import PLAN

GRID = ["--gpus", "h100-sxm", "--tp", "1", "--pp", "1", "--dtypes", "bf16", "--batch-sizes", "256",
        "--batched-tokens", "8192", "--requests", "200", "--rel-tol", "0.1", "--workers", "1", "--json"]


def test_one_line_plan_builds_the_scenario(capsys):
    code = main(["plan", "--model", "llama-3.1-8b", "--rate", "10", "--isl", "300", "--osl", "40", "--ttft", "0.7",
                 "--tpot", "0.04", "--engine", "vllm", *GRID])
    res = json.loads(capsys.readouterr().out)
    assert code == 0 and res["model"] == "llama-3.1-8b" and res["target_rate"] == 10
    assert res["slo"]["ttft_s"] == 0.7 and res["slo"]["tpot_s"] == 0.04
    assert res["mean_output_tokens"] == 40                    # fixed --osl
    (row,) = res["plans"]
    assert row["ttft_p99"] <= 0.7 and row["tpot_p99"] <= 0.04


def test_scenario_flag_equals_the_positional_file(capsys, tmp_path):
    scen = tmp_path / "s.yaml"
    scen.write_text(json.dumps(PLAN))
    assert main(["plan", str(scen), "--target-rate", "20", *GRID]) == 0
    by_pos = json.loads(capsys.readouterr().out)
    assert main(["plan", "--scenario", str(scen), "--rate", "20", *GRID]) == 0
    by_flag = json.loads(capsys.readouterr().out)
    assert by_pos["plans"][0]["max_rate_per_replica"] == by_flag["plans"][0]["max_rate_per_replica"]


@pytest.mark.parametrize("args, start", [
    (["--isl", "0"], "servesim: error: --isl: got 0"),
    (["--tpot", "-1"], "servesim: error: --tpot: got -1.0"),
    (["--engine", "nope"], "servesim: error: --engine: got 'nope'"),
    (["--model", "no-such-model"], "servesim: error: --model: got 'no-such-model'"),
])
def test_one_line_errors_name_the_flag(capsys, args, start):
    assert main(["plan", "--rate", "5", *args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(start) and err.count("\n") == 1


def test_unknown_model_in_a_scenario_file_is_one_error(capsys, tmp_path):
    scen = tmp_path / "s.yaml"
    scen.write_text(json.dumps(PLAN | {"model": "no-such-model"}))
    assert main(["plan", str(scen), "--rate", "5", "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("servesim: error: model: got 'no-such-model'")
