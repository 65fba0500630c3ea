"""API vs self-host page: what the What-if scenario's traffic costs a day on rented GPUs and on
LLM APIs, with every price editable, and the daily volume from which self-hosting is cheaper
(``simulator.planning.cost``)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from pydantic import ValidationError

from simulator.catalog.gpus import load_gpu
from simulator.errors import InputError, ServesimError
from simulator.planning.api_prices import ApiPrice, api_model_names, api_price
from simulator.planning.cost import (SECONDS_PER_DAY, Mix, api_cost_per_token, break_even, compare,
                                     energy_cost_per_hour, parse_volume, replica_capacity, self_host_daily_cost,
                                     workload_mix)
from simulator.planning.prices import PRICE_KINDS, load_prices

from simulator.dashboard import charts, page_path
from simulator.dashboard.scenario_io import describe, error_line, fmt_count, scenario_from_yaml, scenario_yaml
from simulator.dashboard.state import constant_rate_error, current_scenario, run_scenario, show_errors

K = "costs.w."
SUBMITTED = "costs.inputs"        # the submitted form values
ERRORS = "costs.errors"
DEFAULT_APIS = ("openai:gpt-4o-mini", "groq:llama-3.1-8b-instant", "anthropic:claude-sonnet-4-5")
PRICE_COLUMNS = ["api", "input $/M", "cached input $/M", "output $/M", "batch input $/M", "batch output $/M",
                 "source", "date"]


@st.cache_data(max_entries=32, show_spinner="Finding the highest rate one replica serves within the SLOs…")
def capacity(yaml_text: str, attainment: float, requests: int) -> dict[str, Any]:
    """``replica_capacity`` of a scenario (YAML), cached."""
    return replica_capacity(scenario_from_yaml(yaml_text), attainment, requests)


@st.cache_data(max_entries=64, show_spinner=False)
def list_api_models() -> list[str]:
    """API model names; empty (with a note on the page) when the genai-prices package is absent."""
    try:
        return api_model_names()
    except ServesimError:
        return []


#: What the page says when no API prices are installed.
NO_API_PRICES = ("API prices come from the genai-prices package, which is not installed: "
                 "pip install \"servesim[app,prices]\" (the self-hosting side works without it).")


@st.cache_data(max_entries=256, show_spinner=False)
def package_price(name: str, prompt_tokens: float) -> dict[str, Any]:
    p = api_price(name, prompt_tokens=prompt_tokens)
    return {"api": name, "input $/M": p.input_per_mtok, "cached input $/M": p.cached_input_per_mtok,
            "output $/M": p.output_per_mtok, "batch input $/M": p.batch_input_per_mtok,
            "batch output $/M": p.batch_output_per_mtok, "source": p.source, "date": p.date}


def to_api_price(row: pd.Series) -> ApiPrice:
    """An edited price row as the cost module's :class:`ApiPrice` (NaN batch prices: no batch API)."""
    def num(col: str, allow_none: bool = False) -> float | None:
        v = row[col]
        if v is None or (isinstance(v, float) and math.isnan(v)):
            if allow_none:
                return None
            raise InputError(f"{row['api']}: {col}", v, "give a price in USD per million tokens")
        if float(v) < 0:
            raise InputError(f"{row['api']}: {col}", v, "must be >= 0")
        return float(v)
    provider, _, model = str(row["api"]).rpartition(":")
    return ApiPrice(model or str(row["api"]), provider or "user", num("input $/M"), num("cached input $/M"),
                    num("output $/M"), num("batch input $/M", True), num("batch output $/M", True),
                    str(row["source"]), str(row["date"]))


def on_submit() -> None:
    """Form callback: check the inputs (volume text, numbers); keep them or record the error."""
    ss = st.session_state
    values = {k[len(K):]: v for k, v in ss.items() if isinstance(k, str) and k.startswith(K)}
    try:
        if values.get("volume", "").strip():
            parse_volume(values["volume"])
        if not values.get("apis"):
            raise InputError("apis", [], "pick at least one API model")
    except ServesimError as err:
        field, msg = error_line(err)
        ss[ERRORS] = {"volume" if field == "--volume" else field: msg}
        return
    ss[SUBMITTED], ss[ERRORS] = values, {}


def _sidebar(gpu: str) -> dict[str, Any]:
    ss = st.session_state
    errors = ss.get(ERRORS, {})
    book = load_prices()
    kind = ss.get(K + "price_kind", "on-demand")
    try:
        offer = book.offer(gpu, kind)
        offer_note = f"{offer.provider} {offer.kind}, {offer.date}: {offer.source}"
        default_price = offer.usd_per_gpu_hour
    except ServesimError as err:
        offer_note, default_price = error_line(err)[1], 0.0
    names = list_api_models()
    if not names:
        st.info(NO_API_PRICES)
    defaults = {"price_kind": "on-demand", "gpu_price": default_price, "attainment": 0.99, "requests": 400,
                "rate_per_replica": 0.0, "volume": "", "cached_share": 0.0, "kwh_price": 0.0, "batch": False,
                "apis": [n for n in DEFAULT_APIS if n in names]}
    for k, v in defaults.items():
        ss.setdefault(K + k, v)
    if ss.get("costs.price_for") != (gpu, kind):      # a new GPU or price kind: start from its list price
        ss[K + "gpu_price"], ss["costs.price_for"] = default_price, (gpu, kind)
    with st.sidebar:
        st.header("Prices and volume")
        st.selectbox("GPU price kind", PRICE_KINDS, key=K + "price_kind")
        with st.form("costs_form", border=False):
            st.number_input(f"{gpu} price (USD per GPU-hour)", min_value=0.0, step=0.1, format="%.3f",
                            key=K + "gpu_price", help=f"List price: {offer_note}")
            st.caption(f"List price: {offer_note}")
            show_errors(errors, "gpu_price", "gpu")
            st.multiselect("API models (provider:model, priced by genai-prices)", names, key=K + "apis")
            show_errors(errors, "apis", "--api")
            st.text_input("Volume (tokens per day; empty = the scenario's load)", key=K + "volume",
                          placeholder="e.g. 2e9, 500M, 2B, 300k")
            show_errors(errors, "volume")
            st.number_input("Rate one replica serves (req/s; 0 = find it by simulation)", min_value=0.0, step=0.5,
                            key=K + "rate_per_replica")
            c1, c2 = st.columns(2)
            c1.number_input("SLO attainment", min_value=0.5, max_value=1.0, step=0.01, format="%.3f",
                            key=K + "attainment")
            c2.number_input("Requests per run", min_value=50, step=50, key=K + "requests")
            st.number_input("Share of prompt tokens cached by the API", min_value=0.0, max_value=1.0, step=0.05,
                            key=K + "cached_share")
            st.number_input("Electricity (USD per kWh; 0 = not counted)", min_value=0.0, step=0.01, format="%.3f",
                            key=K + "kwh_price")
            st.checkbox("Also price the batch APIs", key=K + "batch")
            st.form_submit_button("Compare", type="primary", on_click=on_submit, width="stretch",
                                  icon=":material/calculate:")
        for f, msg in errors.items():
            if f not in defaults and f not in ("gpu", "--api"):
                st.error(msg, icon=":material/error:")
    return ss.get(SUBMITTED) or {k: ss[K + k] for k in defaults}


def _price_editor(apis: list[str], mix: Mix) -> list[ApiPrice]:
    rows, bad = [], []
    for name in apis:
        try:
            rows.append(package_price(name, mix.prompt_tokens))
        except ServesimError as err:
            bad.append(error_line(err)[1])
    for msg in bad:
        st.error(msg, icon=":material/error:")
    table = pd.DataFrame(rows, columns=PRICE_COLUMNS)
    st.subheader("API prices (USD per million tokens; edit any cell)")
    edited = st.data_editor(table, hide_index=True, width="stretch", disabled=["api"], key="costs.prices_editor",
                            num_rows="fixed")
    return prices_from_table(table, edited, pd.Timestamp.now().date().isoformat())


def prices_from_table(original: pd.DataFrame, edited: pd.DataFrame, today: str) -> list[ApiPrice]:
    """The API prices of the edited table; a row whose prices were changed is sourced as edited on ``today``."""
    cols = [c for c in PRICE_COLUMNS if c.endswith("$/M")]
    a, b = original[cols].astype(float), edited[cols].astype(float)
    changed = ((a - b).abs() > 1e-12) | (a.isna() ^ b.isna())
    prices = []
    for i, row in edited.iterrows():
        if changed.loc[i].any():
            row = row.copy()
            row["source"], row["date"] = "edited on the dashboard", today
        prices.append(to_api_price(row))
    return prices


def _chart(mix: Mix, cap_tokens: float, replica_cost: float, prices: list[ApiPrice], volume: float,
           batch: bool, label: str) -> None:
    options = [(f"{p.provider}:{p.model}", api_cost_per_token(p, mix)) for p in prices]
    if batch:
        options += [(f"{p.provider}:{p.model} (batch)", api_cost_per_token(p, mix, True)) for p in prices
                    if p.batch_input_per_mtok is not None]
    evens = [be for _, a in options if (be := break_even(a, replica_cost, cap_tokens)["first"])]
    lo = min([volume, *evens]) / 30
    hi = max([volume, *evens, cap_tokens]) * 30
    grid = np.geomspace(lo, hi, 400)
    frames = [pd.DataFrame({"option": label, "tokens_per_day": grid,
                            "usd_per_day": [self_host_daily_cost(v, cap_tokens, replica_cost) for v in grid]})]
    marks = []
    for name, a in options:
        frames.append(pd.DataFrame({"option": name, "tokens_per_day": grid, "usd_per_day": grid * a}))
        be = break_even(a, replica_cost, cap_tokens)["first"]
        if be:
            marks.append({"option": name, "tokens_per_day": be, "usd_per_day": be * a})
    st.altair_chart(charts.breakeven_chart(pd.concat(frames, ignore_index=True), pd.DataFrame(marks), volume),
                    width="stretch")
    st.caption("Self-hosting pays whole replica-hours with one replica always on, so its line is flat until one "
               "replica is full and then steps; each API line is linear. Diamonds: break-even volumes. "
               "Dashed: the volume priced above.")


def render() -> None:
    """Draw the API vs self-host page."""
    st.title("API vs self-host")
    st.caption("Daily cost of serving the What-if scenario's traffic on rented GPUs (within its SLOs) against LLM API "
               "prices. API and self-hosted models may differ in quality; quantization quality loss is out of scope.")
    base = current_scenario()
    st.markdown(f"Scenario: {describe(base)}")
    st.page_link(page_path("whatif"), label="Edit it on the What-if page", icon=":material/tune:")
    err = constant_rate_error(base, "pricing")
    if err:
        st.error(err, icon=":material/error:")
        return
    v = _sidebar(base.deployment.gpu)
    yaml_text = scenario_yaml(base)
    try:
        summary = run_scenario(yaml_text).summary
        mix = workload_mix(summary, v["cached_share"])
        if v["rate_per_replica"] > 0:
            rate, how = v["rate_per_replica"], "given in the sidebar"
        else:
            rate = capacity(yaml_text, v["attainment"], int(v["requests"]))["rate"]
            how = f"found by bisection at {v['attainment']:.1%} SLO attainment"
        gpus = base.deployment.tp * base.deployment.pp
        energy = energy_cost_per_hour(load_gpu(base.deployment.gpu), gpus, summary["busy_fraction"],
                                      v["kwh_price"]) if v["kwh_price"] > 0 else 0.0
        replica_cost = v["gpu_price"] * gpus + energy
        if replica_cost <= 0:
            raise InputError("gpu_price", v["gpu_price"], "give the GPU's price in USD per GPU-hour (more than 0)")
        cap_tokens = rate * mix.tokens * SECONDS_PER_DAY
        own_load = base.workload.arrival.rate * mix.tokens * SECONDS_PER_DAY
        volume = parse_volume(v["volume"]) if v["volume"].strip() else own_load
        prices = _price_editor(list(v["apis"]), mix)
        result = compare(mix, volume, cap_tokens, replica_cost, prices, bool(v["batch"]))
    except (ServesimError, ValidationError) as err:
        st.error(error_line(err)[1], icon=":material/error:")
        return
    sh = result["self_host"]
    st.subheader(f"At {fmt_count(volume)} tokens per day")
    cols = st.columns(4)
    cols[0].metric("Self-host", f"${sh['cost_per_day']:,.2f}/day", help=f"{sh['replica_hours_per_day']} replica-hours "
                   f"× ${replica_cost:,.3f} (GPUs{' + energy' if energy else ''})")
    cols[1].metric("Self-host $ per M tokens", f"{sh['usd_per_million_tokens']:,.4f}",
                   help=f"{sh['usd_per_million_tokens_at_full_load']:,.4f} at full load")
    cols[2].metric("One replica serves", f"{rate:,.2f} req/s", help=f"{fmt_count(cap_tokens)} tokens/day; {how}")
    cols[3].metric("Tokens in / out", f"{mix.prompt_tokens:,.0f} / {mix.output_tokens:,.0f}",
                   help="mean prompt and output tokens per completed request of the simulated run")
    rows = [{"option": f"self-host {base.deployment.gpu} ×{gpus}", "USD/day": round(sh["cost_per_day"], 2),
             "USD per M tokens": round(sh["usd_per_million_tokens"], 4), "break-even tokens/day": "-"}]
    for e in result["api"]:
        for mode in ("standard", "batch"):
            if e.get(mode):
                be = e[mode]["break_even_tokens_per_day"]["first"]
                rows.append({"option": f"{e['provider']}:{e['model']}" + (" (batch)" if mode == "batch" else ""),
                             "USD/day": round(e[mode]["cost_per_day"], 2),
                             "USD per M tokens": round(e[mode]["usd_per_million_tokens"], 4),
                             "break-even tokens/day": fmt_count(be)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.subheader("Cost against volume")
    _chart(mix, cap_tokens, replica_cost, prices, volume, bool(v["batch"]),
           f"self-host {base.deployment.gpu} ×{gpus}")


if __name__ == "__main__":
    render()
