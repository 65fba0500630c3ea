"""``servesim cost``: self-hosting a scenario's deployment versus LLM APIs, per million tokens."""
from __future__ import annotations

import argparse
from typing import Any

from .registry import finite_float, print_json, subcommand
from ..tables import render, table


@subcommand
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cost", help="self-host vs API cost per million tokens, and the break-even daily volume")
    p.add_argument("scenario", nargs="?", help="scenario YAML file (default: embedded)")
    p.add_argument("--api", action="append", default=[], metavar="MODEL",
                   help="API model to compare (repeatable), e.g. gpt-4o-mini or together:MODEL")
    p.add_argument("--volume", help="tokens per day (input + output), e.g. 2e9, 500M; default: the scenario's load")
    p.add_argument("--prices", help="GPU price file replacing the built-in prices of its GPUs")
    p.add_argument("--price-kind", default="on-demand", help="on-demand | reserved | spot")
    p.add_argument("--provider", help="only this GPU provider's prices")
    p.add_argument("--api-prices", help="API price file for models genai-prices lacks (or to replace its prices)")
    p.add_argument("--api-batch", action="store_true", help="also price the APIs' batch (discounted) tier")
    p.add_argument("--kwh-price", type=finite_float, help="add energy: dollars per kWh (TDP x busy fraction)")
    p.add_argument("--cache-hit-rate", type=finite_float, help="share of prompt tokens billed at the cached-input price")
    p.add_argument("--rate-per-replica", type=finite_float, help="requests/s one replica serves (skips the search)")
    p.add_argument("--attainment", type=finite_float, default=0.99, help="SLO attainment for the capacity search")
    p.add_argument("--requests", type=int, default=400, help="requests per simulated evaluation of the search")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key of the scenario")
    p.add_argument("--list-api", metavar="TEXT", help="list API model names containing TEXT and exit")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(handler=run)


def run(a: argparse.Namespace) -> int:
    from ..config.loader import load_scenario, parse_set
    from ..errors import InputError
    from ..planning.cost import cost_report, parse_volume

    if a.list_api is not None:
        from ..planning.api_prices import api_model_names
        names = api_model_names(a.list_api)
        print_json(names) if a.json else print("\n".join(names) or f"no API model name contains {a.list_api!r}")
        return 0
    if not 0 < a.attainment <= 1:
        raise InputError("--attainment", a.attainment, "must be in (0, 1]")
    if a.requests < 50:
        raise InputError("--requests", a.requests, "must be at least 50")
    scenario = load_scenario(a.scenario, parse_set(a.set))
    volume = parse_volume(a.volume) if a.volume is not None else None
    res = cost_report(scenario, api_models=a.api, volume=volume, prices_file=a.prices, price_kind=a.price_kind,
                      provider=a.provider, api_prices_file=a.api_prices, kwh_price=a.kwh_price,
                      attainment=a.attainment, requests=a.requests, rate_per_replica=a.rate_per_replica,
                      cached_share=a.cache_hit_rate, batch=a.api_batch)
    if a.json:
        print_json(res)
    else:
        print(format_cost(res))
    return 0


def _tokens(v: float | None) -> str:
    if v is None:
        return "never"
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.3g}"


def format_cost(res: dict[str, Any], width: int | None = None) -> str:
    """Both bills side by side, as text wrapped to ``width`` columns (the terminal's)."""
    sh, mix = res["self_host"], res["mix"]
    pr = sh["price"]
    intro = (f"{res['model']}: {_tokens(res['volume_tokens_per_day'])} tokens/day; per request "
             f"{mix['prompt_tokens']:.0f} in / {mix['output_tokens']:.0f} out tokens, {mix['cached_share']:.0%} cached\n"
             f"self-host: {sh['gpu']} x{sh['gpus_per_replica']} per replica at ${pr['usd_per_gpu_hour']:g}/GPU-h "
             f"({pr['provider']} {pr['kind']}, {pr['date']}); {sh['rate_per_replica']:.3g} req/s per replica "
             f"({sh['capacity_from']}) = {_tokens(sh['capacity_tokens_per_day_per_replica'])} tokens/day")
    caption = None
    if res["api"]:
        caption = ("break-even: daily volume above which self-hosting is cheaper (one replica always on, "
                   "whole replica-hours); 'never' = the API costs less even at full load. API prices: "
                   + "; ".join(sorted({f"{e['source']}, {e['date']}" for e in res['api']})))
    t = table(["option", "$/day", "$/M tok", "$/M out", "break-even tokens/day"], caption=caption)
    t.add_row(f"self-host ({sh['replica_hours_per_day']} replica-h/day)", f"{sh['cost_per_day']:.2f}",
              f"{sh['usd_per_million_tokens']:.4f}", f"{sh['usd_per_million_output_tokens']:.4f}", "")
    t.add_row("self-host at full load", "", f"{sh['usd_per_million_tokens_at_full_load']:.4f}", "", "")
    for e in res["api"]:
        for mode in ("standard", "batch"):
            b = e.get(mode)
            if mode == "batch" and mode not in e:
                continue
            name = f"{e['provider']}:{e['model']}" + (" (batch)" if mode == "batch" else "")
            if b is None:
                t.add_row(name, "no batch prices", "", "", "")
                continue
            be = b["break_even_tokens_per_day"]
            stays = be["stays_cheaper_from"]
            gap = "" if be["first"] == stays else f" (stays from {_tokens(stays)})"
            t.add_row(name, f"{b['cost_per_day']:.2f}", f"{b['usd_per_million_tokens']:.4f}",
                      f"{b['usd_per_million_output_tokens']:.4f}", _tokens(be["first"]) + gap)
    return render(intro, t, width=width)
