"""``servesim plan`` as text: the ranked plans as one table wrapped to the terminal, as in --json."""
from __future__ import annotations

import json

from simulator.cli import main
from tests.planning.test_plan_cli_oneline import GRID

ARGS = ["plan", "--model", "llama-3.1-8b", "--rate", "10", "--isl", "300", "--osl", "40", "--ttft", "0.7",
        "--tpot", "0.04", "--no-progress", *GRID[:-1]]


def test_ranked_plans_are_a_table_with_the_json_figures(capsys, monkeypatch):
    assert main([*ARGS, "--json"]) == 0
    (plan,) = json.loads(capsys.readouterr().out)["plans"]
    monkeypatch.setenv("COLUMNS", "100")
    assert main(ARGS) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if line.startswith("│")]
    first = next(r for r in rows if r[0] == "1")
    assert first[1].startswith(plan["candidate"][:10]) and first[4] == f"{plan['max_rate_per_replica']:.2f}"
