"""Cost: GPU price files, API prices, both bills and the break-even volume, checked by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from simulator.errors import InputError, ServesimError
from simulator.planning.api_prices import ApiPrice, api_price, load_api_overrides
from simulator.planning.cost import (Mix, api_cost_per_token, break_even, compare, parse_volume, replica_hours,
                                     self_host_daily_cost)
from simulator.planning.prices import load_prices


def flat_api(inp: float, out: float, cached: float | None = None) -> ApiPrice:
    return ApiPrice("m", "p", inp, inp if cached is None else cached, out, None, None, "test", "2026-01-01")


def test_self_host_dollars_per_million_tokens_by_hand():
    # A $2.50/GPU-h GPU serving 2,000 output tokens/s (and, with 1,000 in + 250 out per request,
    # 10,000 tokens/s in all): at full load a replica-hour carries 36e6 tokens -> $0.0694/M tokens.
    mix = Mix(1000, 250)
    capacity = 10_000 * 86_400                      # tokens/day of one replica
    res = compare(mix, volume=capacity, capacity=capacity, replica_cost_per_hour=2.5, api=[])
    sh = res["self_host"]
    assert sh["replica_hours_per_day"] == 24 and sh["cost_per_day"] == pytest.approx(60.0)
    assert sh["usd_per_million_tokens"] == pytest.approx(2.5 / 36.0)
    assert sh["usd_per_million_output_tokens"] == pytest.approx(2.5 / (2000 * 3600 / 1e6))
    assert sh["usd_per_million_tokens_at_full_load"] == pytest.approx(2.5 / 36.0)
    # a tenth of the load still pays one always-on replica
    low = compare(mix, volume=capacity / 10, capacity=capacity, replica_cost_per_hour=2.5, api=[])["self_host"]
    assert low["cost_per_day"] == pytest.approx(60.0) and low["usd_per_million_tokens"] == pytest.approx(25 / 36)


def test_replica_hours_are_whole_and_at_least_a_day_of_one():
    assert replica_hours(1, 100) == 24
    assert replica_hours(100, 100) == 24
    assert replica_hours(101, 100) == 25          # 24.24 -> 25 whole hours
    assert replica_hours(250, 100) == 60
    assert self_host_daily_cost(250, 100, 3.0) == 180.0


def test_api_cost_per_token_by_hand():
    p = flat_api(0.15, 0.60, cached=0.075)
    # 1000 in (20% cached) + 200 out: (800*0.15 + 200*0.075 + 200*0.6)/1e6 dollars per 1200 tokens
    a = api_cost_per_token(p, Mix(1000, 200, 0.2))
    assert a == pytest.approx((800 * 0.15 + 200 * 0.075 + 200 * 0.6) / 1e6 / 1200)


def test_break_even_formula_by_hand():
    # API $1/M tokens, replica $2/h, capacity 100M tokens/day: one always-on replica costs $48/day,
    # which the API reaches at 48M tokens/day (< capacity, so it is the break-even).
    be = break_even(1e-6, 2.0, 100e6)
    assert be["first"] == pytest.approx(48e6) and be["stays_cheaper_from"] == pytest.approx(48e6)
    # capacity 40M tokens/day: the API is cheaper than a replica even at full load -> never
    assert break_even(1e-6, 2.0, 40e6) == {"first": None, "stays_cheaper_from": None}
    # u = aC/(24p) = 1.02: whole-hour billing leaves gaps up to k < u/(u-1) = 51 replica-hours
    cap = 1.02 * 48e6
    be = break_even(1e-6, 2.0, cap)
    assert be["first"] == pytest.approx(48e6) and be["stays_cheaper_from"] == pytest.approx(2.0 * 50 / 1e-6)


@pytest.mark.parametrize("a,p,cap", [(1e-6, 2.0, 100e6), (1e-6, 2.0, 1.02 * 48e6), (3e-7, 3.78, 2e9),
                                     (1e-6, 2.0, 40e6)])
def test_break_even_matches_a_scan_of_both_bills(a, p, cap):
    be = break_even(a, p, cap)
    vols = np.linspace(1e5, 4 * cap, 200_001)
    cheaper = np.array([self_host_daily_cost(v, cap, p) < a * v for v in vols])
    if be["first"] is None:
        assert not cheaper.any()
        return
    step = vols[1] - vols[0]
    assert vols[np.argmax(cheaper)] == pytest.approx(be["first"], abs=step)
    last_bad = vols[np.nonzero(~cheaper)[0].max()]
    assert last_bad == pytest.approx(be["stays_cheaper_from"], abs=step)


def test_parse_volume():
    assert parse_volume("2e9") == 2e9 and parse_volume("500M") == 5e8 and parse_volume("1.5B") == 1.5e9
    assert parse_volume("300k") == 3e5 and parse_volume(1000) == 1000
    for bad in ("lots", "-5", "0"):
        with pytest.raises(InputError, match="--volume"):
            parse_volume(bad)


def test_builtin_gpu_prices_are_consistent():
    book = load_prices()
    h = book.offer("h100-sxm", "on-demand")
    assert h.usd_per_gpu_hour == min(o.usd_per_gpu_hour for o in book.prices["h100-sxm"] if o.kind == "on-demand")
    for offers in book.prices.values():
        for o in offers:
            assert o.source and len(o.date) >= 4
            if o.instance_usd_per_hour:
                assert o.usd_per_gpu_hour == pytest.approx(o.instance_usd_per_hour / o.gpus_per_instance, rel=5e-3)
    with pytest.raises(InputError, match="no spot price"):
        book.offer("h100-sxm", "spot")


def test_price_override_file(tmp_path):
    good = {"prices": {"b200": [{"provider": "x", "offer": "1x B200", "kind": "on-demand",
                                 "usd_per_gpu_hour": 6.0, "date": "2026-11-01", "source": "quote"}]}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(good))
    book = load_prices(tmp_path / "p.yaml")
    assert book.offer("b200").usd_per_gpu_hour == 6.0 and book.offer("h100-sxm").usd_per_gpu_hour > 0
    missing = {"prices": {"b200": [{"provider": "x", "offer": "o", "kind": "on-demand", "usd_per_gpu_hour": 6.0,
                                    "source": "quote"}]}}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(missing))
    with pytest.raises(ServesimError, match=r"prices\.b200\.0\.date: required but missing"):
        load_prices(tmp_path / "m.yaml")
    wrong = {"prices": {"h100-sxm": [{"provider": "x", "offer": "8x", "kind": "on-demand", "usd_per_gpu_hour": 5.0,
                                      "instance_usd_per_hour": 80.0, "gpus_per_instance": 8, "date": "2026",
                                      "source": "s"}]}}
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(wrong))
    with pytest.raises(ServesimError, match="must equal instance_usd_per_hour"):
        load_prices(tmp_path / "w.yaml")
    unknown = {"prices": {"h900": good["prices"]["b200"]}}
    (tmp_path / "u.yaml").write_text(yaml.safe_dump(unknown))
    with pytest.raises(InputError, match="h900"):
        load_prices(tmp_path / "u.yaml")


def test_api_override_file(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"models": {"in-house": {
        "input_per_mtok": 0.2, "output_per_mtok": 0.8, "batch_discount": 0.5, "source": "quote", "date": "2026-11"}}}))
    ov = load_api_overrides(tmp_path / "a.yaml")
    p = api_price("in-house", overrides=ov)
    assert (p.input_per_mtok, p.cached_input_per_mtok, p.output_per_mtok) == (0.2, 0.2, 0.8)
    assert (p.batch_input_per_mtok, p.batch_output_per_mtok) == (0.1, 0.4)
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"models": {"x": {"input_per_mtok": 1}}}))
    with pytest.raises(ServesimError, match="output_per_mtok: required but missing"):
        load_api_overrides(tmp_path / "b.yaml")


genai = pytest.importorskip("genai_prices", reason="genai-prices (extra 'prices') is not installed")


def test_genai_prices_gpt_4o_mini():
    # OpenAI list price of gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per 1M tokens;
    # Batch API 50% off (also in /work/shared/reference/hardware-models-prices.md, section E)
    p = api_price("gpt-4o-mini")
    assert (p.provider, p.input_per_mtok, p.cached_input_per_mtok, p.output_per_mtok) == ("openai", 0.15, 0.075, 0.6)
    assert (p.batch_input_per_mtok, p.batch_output_per_mtok) == (0.075, 0.3)
    assert "genai-prices==0.2.5" in p.source
    # the date is the bundled data's (the release), not today's
    assert p.date == "2026-11-19 (genai-prices 0.2.5 release)"
    # one request of 1M input and 1M output tokens costs 0.15 + 0.60 dollars, as genai-prices computes it
    from genai_prices import Usage, calc_price
    ours = p.per_request(1e6, 1e6)
    theirs = float(calc_price(Usage(input_tokens=1_000_000, output_tokens=1_000_000), "gpt-4o-mini").total_price)
    assert ours == pytest.approx(0.75) == pytest.approx(theirs)


def test_genai_prices_unknown_name_suggests_close_ones():
    with pytest.raises(InputError) as e:
        api_price("gpt-4o-minni")
    assert str(e.value).startswith("--api: got 'gpt-4o-minni'; did you mean gpt-4o-mini")


def test_tiered_api_price_follows_prompt_length():
    short = api_price("claude-sonnet-4-5", prompt_tokens=1000)
    long = api_price("claude-sonnet-4-5", prompt_tokens=300_000)
    assert long.input_per_mtok > short.input_per_mtok
    assert math.isclose(short.input_per_mtok, 3.0) and math.isclose(short.output_per_mtok, 15.0)


def test_prefix_cache_share_feeds_the_mix():
    from simulator.planning.cost import workload_mix
    summ = {"throughput_requests_per_s": 2.0, "throughput_input_tokens_per_s": 2000.0,
            "throughput_output_tokens_per_s": 400.0}
    assert workload_mix(summ) == Mix(1000.0, 200.0, 0.0)
    assert workload_mix({**summ, "prefix_cache": {"hit_blocks": 30, "lookup_blocks": 120}}).cached_share == 0.25
    assert workload_mix({**summ, "features": {"prefix_cache": {"hit_rate": 0.4}}}).cached_share == 0.4
    assert workload_mix(summ, cached_share=0.1).cached_share == 0.1
    with pytest.raises(InputError, match="--cache-hit-rate"):
        workload_mix(summ, cached_share=1.5)
