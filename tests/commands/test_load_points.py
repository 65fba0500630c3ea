"""``servesim run --model``, ``--concurrency N,N`` and ``--rate R,R``: arrivals per point, checked by queueing laws."""
from __future__ import annotations

import json
import math

import pytest

from simulator.cli import main
from simulator.commands.load_points import at_concurrency, at_rate, parse_concurrency, parse_rates
from simulator.config.loader import load_scenario
from simulator.errors import InputError
from simulator.workload.config import ClosedLoopArrival, GammaArrival, OfflineArrival, PoissonArrival

SMALL = ["--set", "workload.requests=300", "--no-progress"]


def run_json(capsys, *args: str):
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_model_flag_takes_a_hugging_face_id(capsys):
    s = run_json(capsys, "run", *SMALL, "--model", "meta-llama/Llama-3.1-8B-Instruct", "--json")
    base = run_json(capsys, "run", *SMALL, "--model", "llama-3.1-8b", "--json")
    assert s["setup"]["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert s["ttft_s"] == base["ttft_s"] and s["tpot_s"] == base["tpot_s"]   # same architecture


def test_model_flag_changes_the_model(capsys):
    small = run_json(capsys, "run", *SMALL, "--model", "llama-3.2-1b", "--json")
    big = run_json(capsys, "run", *SMALL, "--model", "llama-3.1-8b", "--json")
    assert small["tpot_s"]["mean"] < big["tpot_s"]["mean"]


def test_concurrency_points_obey_littles_law(capsys):
    """Closed loop without think time: clients = completion rate x mean E2E (Little's law), the rate
    measured while all clients are busy (second half of arrivals, not the drain at the end)."""
    points = run_json(capsys, "run", *SMALL, "--concurrency", "4,16", "--json")
    assert [p["concurrency"] for p in points] == ["4", "16"]
    for p, n in zip(points, (4, 16)):
        assert p["setup"]["concurrency"] == n
        assert p["rate"]["achieved_rate"] * p["e2e_s"]["mean"] == pytest.approx(n, rel=0.1)
    assert points[1]["throughput_output_tokens_per_s"] > points[0]["throughput_output_tokens_per_s"]


def test_rate_points_offer_their_rate(capsys):
    points = run_json(capsys, "run", *SMALL, "--rate", "1,3", "--json")
    for p, r in zip(points, (1.0, 3.0)):
        assert p["setup"]["offered_rate"] == r
        assert p["rate"]["offered_rate"] == pytest.approx(r, rel=0.25)   # Poisson: 150 arrivals in the half measured


def test_rate_keeps_the_scenarios_process_and_inf_is_offline():
    s = load_scenario(None, {"workload.arrival": {"process": "gamma", "rate": 5, "cv": 2.0}})
    g = at_rate(s, 2.0).workload.arrival
    assert isinstance(g, GammaArrival) and (g.rate, g.cv) == (2.0, 2.0)
    assert isinstance(at_rate(at_concurrency(s, 3), 2.0).workload.arrival, PoissonArrival)
    assert isinstance(at_rate(s, math.inf).workload.arrival, OfflineArrival)
    c = at_concurrency(load_scenario(None, {"workload.arrival": {"process": "closed_loop", "concurrency": 2,
                                                                 "think_time_s": 0.5}}), 7).workload.arrival
    assert isinstance(c, ClosedLoopArrival) and (c.concurrency, c.think_time_s) == (7, 0.5)


def test_several_points_print_one_table(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["run", *SMALL, "--concurrency", "2,8"]) == 0
    out = capsys.readouterr().out
    assert "one row per concurrency" in out and "TTFT p99" in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["2", "8"]


def test_points_write_one_folder_each(tmp_path, capsys):
    assert main(["run", *SMALL, "--rate", "2,4", "--format", "vllm", "--out", str(tmp_path)]) == 0
    points = json.loads(capsys.readouterr().out)
    assert [p["request_rate"] for p in points] == [2.0, 4.0]
    for r in ("2", "4"):
        assert (tmp_path / f"rate-{r}" / "summary.json").is_file()
        assert json.loads((tmp_path / f"rate-{r}" / "vllm.json").read_text())["request_rate"] == float(r)


@pytest.mark.parametrize("text", ["0", "1,,2", "a", "2.5", "-1", ",".join(["1"] * 101)])
def test_bad_concurrency_is_one_line_error(text):
    with pytest.raises(InputError) as e:
        parse_concurrency(text)
    assert e.value.field == "--concurrency"


@pytest.mark.parametrize("text", ["0", "-2", "nan", "x", "1,", "-inf"])
def test_bad_rate_is_one_line_error(text):
    with pytest.raises(InputError) as e:
        parse_rates(text)
    assert e.value.field == "--rate"


def test_cli_refuses_bad_points_with_exit_2(capsys):
    assert main(["run", "--rate", "0,1", "--no-progress"]) == 2
    assert "--rate" in capsys.readouterr().err
    assert main(["run", "--rate", "1,2", "--replications", "3", "--no-progress"]) == 2
    assert main(["run", "--model", "no-such-model", "--no-progress"]) == 2
