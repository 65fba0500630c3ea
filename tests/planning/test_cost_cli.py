"""``servesim cost`` end to end: the self-host bill from a simulated run, against an API, by hand."""
from __future__ import annotations

import json
import math

import pytest
import yaml

from simulator.cli import main
from simulator.planning.prices import load_prices

from .conftest import PLAN


@pytest.fixture
def scen(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(PLAN))
    return p


def test_cost_json_matches_hand_computation(scen, tmp_path, capsys):
    api = tmp_path / "api.yaml"
    api.write_text(yaml.safe_dump({"models": {"house": {"input_per_mtok": 0.10, "output_per_mtok": 0.40,
                                                        "source": "test", "date": "2026-11-22"}}}))
    code = main(["cost", str(scen), "--api", "house", "--api-prices", str(api), "--rate-per-replica", "20",
                 "--volume", "500M", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert code == 0
    price = load_prices().offer("h100-sxm").usd_per_gpu_hour
    mix = res["mix"]
    assert mix["prompt_tokens"] == 512 and mix["output_tokens"] == 64 and mix["cached_share"] == 0
    capacity = 20 * 576 * 86_400                                   # tokens/day of one replica
    sh = res["self_host"]
    assert sh["capacity_tokens_per_day_per_replica"] == pytest.approx(capacity)
    hours = max(24, math.ceil(24 * 500e6 / capacity))
    assert sh["replica_hours_per_day"] == hours and sh["cost_per_day"] == pytest.approx(hours * price)
    assert sh["usd_per_million_tokens"] == pytest.approx(hours * price / 500)
    a = (512 * 0.10 + 64 * 0.40) / 1e6 / 576                        # API dollars per token
    std = res["api"][0]["standard"]
    assert std["usd_per_million_tokens"] == pytest.approx(a * 1e6)
    assert std["cost_per_day"] == pytest.approx(a * 500e6)
    be = std["break_even_tokens_per_day"]["first"]
    expected = 24 * price / a if 24 * price / a <= capacity else None
    assert be == (pytest.approx(expected) if expected else None)


def test_energy_adds_tdp_times_busy_fraction(scen, capsys):
    base = ["cost", str(scen), "--rate-per-replica", "20", "--volume", "100M", "--json"]
    assert main(base) == 0
    plain = json.loads(capsys.readouterr().out)["self_host"]
    assert main(base + ["--kwh-price", "0.5"]) == 0
    sh = json.loads(capsys.readouterr().out)["self_host"]
    # H100 SXM TDP 700 W (hwprofiles/h100-sxm.yaml): 0.7 kW x busy x $0.5/kWh
    assert sh["energy_cost_per_hour"] == pytest.approx(0.7 * sh["busy_fraction"] * 0.5, rel=1e-6)
    assert sh["replica_cost_per_hour"] == pytest.approx(plain["replica_cost_per_hour"] + sh["energy_cost_per_hour"])


def test_cost_errors_exit_2_with_one_line(scen, capsys):
    pytest.importorskip("genai_prices", reason="genai-prices (extra 'prices') is not installed")
    assert main(["cost", str(scen), "--api", "gpt-4o-minni", "--rate-per-replica", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean gpt-4o-mini" in err
    assert main(["cost", str(scen), "--volume", "lots"]) == 2
    assert "--volume: got 'lots'" in capsys.readouterr().err
    assert main(["cost", str(scen), "--set", "deployment.gpu=b200", "--rate-per-replica", "5"]) == 2
    assert "no on-demand price" in capsys.readouterr().err
    assert main(["cost", "--list-api", "gpt-4o-mini", "--json"]) == 0
    assert "openai:gpt-4o-mini" in json.loads(capsys.readouterr().out)
