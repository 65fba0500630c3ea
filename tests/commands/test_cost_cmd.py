"""``servesim cost`` as text: the bills as one table, wrapped to the terminal, numbers as in --json."""
from __future__ import annotations

import json

import yaml

from simulator.cli import main
from tests.planning.conftest import PLAN


def test_text_table_holds_the_json_figures(tmp_path, capsys, monkeypatch):
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(PLAN))
    api = tmp_path / "api.yaml"
    api.write_text(yaml.safe_dump({"models": {"house": {"input_per_mtok": 0.10, "output_per_mtok": 0.40,
                                                        "source": "test", "date": "2026-11-22"}}}))
    args = ["cost", str(scen), "--api", "house", "--api-prices", str(api), "--rate-per-replica", "20",
            "--volume", "500M"]
    assert main([*args, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    monkeypatch.setenv("COLUMNS", "90")
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 90
    rows = {c[0]: c[1:] for c in ([x.strip() for x in line.split("│")[1:-1]] for line in lines if line.startswith("│"))}
    sh = res["self_host"]
    assert rows["self-host at full load"][1] == f"{sh['usd_per_million_tokens_at_full_load']:.4f}"
    house = next(v for k, v in rows.items() if k.endswith("house"))
    assert house[0] == f"{res['api'][0]['standard']['cost_per_day']:.2f}"
