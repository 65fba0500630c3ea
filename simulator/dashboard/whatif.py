"""What-if page: edit one scenario, run it, read its latencies, throughput and goodput, and
compare it with saved configurations on the same charts.

Results are cached by the scenario's YAML text; the URL's query parameters reproduce the scenario.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from simulator.config.loader import apply_overrides, scenario_from_dict
from simulator.config.scenario import Scenario
from simulator.errors import InputError, ServesimError
from simulator.planning.cost import SECONDS_PER_DAY, compare, workload_mix
from simulator.planning.prices import load_prices

from simulator.dashboard import charts
from simulator.dashboard.scenario_form import CURRENT, ERRORS, load_into_form, render_sidebar
from simulator.dashboard.scenario_io import (canonical, cli_overrides, default_scenario, error_line, fmt_seconds, scenario_from_params,
                            scenario_from_yaml, scenario_params, scenario_yaml, url_params)
from simulator.dashboard.state import RATE_BASED, RunOutput, init_widgets, run_scenario

SAVED = "whatif.saved"        # {name: scenario YAML}
FAILED = "whatif.failed"      # {scenario YAML: (field, message)} of runs that raised
SWEEP = "whatif.sweep_rates"  # arrival rates of the latency-throughput curve
URL_ERROR = "whatif.url_error"
LOAD_MULTIPLIERS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


def _ensure_current() -> None:
    ss = st.session_state
    if CURRENT in ss:
        return
    try:
        s = scenario_from_params(st.query_params.to_dict())
    except (ServesimError, ValidationError) as err:
        ss[URL_ERROR] = ("The link's scenario parameters are invalid, the default scenario is shown: "
                         f"{error_line(err)[1]}")
        s = default_scenario()
    ss[CURRENT] = scenario_yaml(s)
    init_widgets(s, force=True)


def _sync_url(s: Scenario) -> None:
    params = url_params(s)
    if scenario_params(st.query_params.to_dict()) != params:
        st.query_params.from_dict(params)


def with_rate(s: Scenario, rate: float) -> Scenario:
    """``s`` with a constant arrival rate (requests/s) of the same process."""
    a = {k: v for k, v in canonical(s)["workload"]["arrival"].items()
         if k not in ("segments", "diurnal", "after_segments") and v is not None}
    return scenario_from_dict(apply_overrides(canonical(s), {"workload.arrival": {**a, "rate": rate}}))


def parse_rates(text: str) -> list[float]:
    """'2, 4, 8' → [2.0, 4.0, 8.0] (requests/s, positive, at most 12)."""
    try:
        rates = [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise InputError("arrival rates", text, "give numbers separated by commas, e.g. 2, 4, 8") from None
    if not rates or len(rates) > 12 or any(not math.isfinite(r) or r <= 0 for r in rates):
        raise InputError("arrival rates", text, "give 1 to 12 positive rates (requests/s) separated by commas")
    return sorted(set(rates))


def _label(s: Scenario, yaml_text: str) -> str:
    for name, y in st.session_state.get(SAVED, {}).items():
        if y == yaml_text:
            return name
    return "current"


# ---------------------------------------------------------------- sections

def self_host_cost(s: Scenario, sm: dict[str, Any]) -> tuple[float | None, str]:
    """USD per million output tokens of running the deployment all day at this run's throughput,
    at the cheapest on-demand list price of its GPU (``planning.cost.compare``); None without a price."""
    d = s.deployment
    try:
        offer = load_prices().offer(d.gpu, "on-demand")
        mix = workload_mix(sm)
    except ServesimError as err:
        return None, error_line(err)[1]
    volume = sm["throughput_requests_per_s"] * mix.tokens * SECONDS_PER_DAY
    res = compare(mix, volume, volume / d.replicas, offer.usd_per_gpu_hour * d.tp * d.pp, [])
    return res["self_host"]["usd_per_million_output_tokens"], (
        f"{d.replicas * d.tp * d.pp} GPUs × ${offer.usd_per_gpu_hour:.2f}/GPU-hour ({offer.provider} on-demand, "
        f"{offer.date}) around the clock, over the output tokens they produce at this load. "
        "The API vs self-host page compares it with API prices.")


def _headline(out: RunOutput, s: Scenario) -> None:
    sm = out.summary
    cols = st.columns(6)
    for i, (block, label) in enumerate((("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "E2E"))):
        for j, p in enumerate(("p50", "p99")):
            cols[2 * i + j].metric(f"{label} {p}", fmt_seconds(sm[block][p]),
                                   help=f"{label} {p} over the {sm['completed']:,} completed requests")
    cols = st.columns(6)
    cols[0].metric("Throughput", f"{sm['throughput_requests_per_s']:.2f} req/s")
    cols[1].metric("Output tok/s", f"{sm['throughput_output_tokens_per_s']:,.0f}")
    cols[2].metric("Goodput", f"{sm['goodput_requests_per_s']:.2f} req/s",
                   help="requests per second that finished within every SLO")
    cols[3].metric("SLO attainment", f"{sm['slo_attainment']:.1%}")
    cost, note = self_host_cost(s, sm)
    cols[4].metric("$/M output tok", "n/a" if cost is None else f"{cost:,.3f}", help="Self-hosted: " + note)
    cols[5].metric("KV cache peak", f"{sm['kv_cache']['peak_used_fraction']:.0%}",
                   help=f"{sm['kv_cache']['blocks_per_replica']:,} blocks of {sm['kv_cache']['block_size']} tokens "
                        "per replica")
    st.caption(f"{sm['completed']:,} of {sm['requests']:,} requests completed, {sm['rejected']:,} rejected (longer "
               f"than the KV cache or the step budget), over {sm['duration_s']:,.1f} s of simulated time; "
               f"MFU {sm['mfu']:.1%}, MBU {sm['mbu']:.1%}, {sm['preemptions']:,} preemptions.")
    if not sm["stability"]["stable"]:
        st.warning("Overloaded: the queue kept growing while requests arrived, so latencies depend on how "
                   "many requests were simulated. Lower the rate or add capacity.", icon=":material/warning:")
    for note in sm.get("notes", []):
        st.caption(f"Note: {note}")


def _table(outputs: dict[str, RunOutput], yamls: dict[str, str]) -> pd.DataFrame:
    rows = []
    for name, out in outputs.items():
        sm = out.summary
        row: dict[str, Any] = {"configuration": name, "GPUs": out.gpus}
        for block, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "E2E")):
            for p in ("p50", "p99"):
                v = sm[block][p]
                row[f"{label} {p} (ms)"] = None if v is None else round(v * 1e3, 1)
        row.update({"req/s": round(sm["throughput_requests_per_s"], 3),
                    "output tok/s": round(sm["throughput_output_tokens_per_s"], 1),
                    "goodput req/s": round(sm["goodput_requests_per_s"], 3),
                    "SLO attainment": round(sm["slo_attainment"], 4), "MFU": round(sm["mfu"], 4),
                    "stable": sm["stability"]["stable"]})
        row["$/M output tok"] = None if (c := self_host_cost(scenario_from_yaml(yamls[name]), sm)[0]) is None \
            else round(c, 4)
        rows.append(row)
    return pd.DataFrame(rows)


def _charts(outputs: dict[str, RunOutput], s: Scenario) -> None:
    names = list(outputs)
    done = {n: o.requests[o.requests["finished"]] for n, o in outputs.items()}
    st.subheader("Latency distributions")
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.cdf_chart(charts.ecdf({n: d["ttft_s"].to_numpy() for n, d in done.items()}),
                                     "Time to first token", "TTFT", s.slo.ttft_s, names), width="stretch")
    c2.altair_chart(charts.cdf_chart(charts.ecdf({n: d["e2e_s"].to_numpy() for n, d in done.items()}),
                                     "End-to-end latency", "E2E", s.slo.e2e_s, names), width="stretch")
    st.subheader("Over time")
    series = pd.concat([charts.binned_series(o.series).assign(config=n) for n, o in outputs.items()],
                       ignore_index=True)
    c1, c2, c3 = st.columns(3)
    c1.altair_chart(charts.series_chart(series, "waiting", "Queue length", "waiting requests", names=names),
                    width="stretch")
    c2.altair_chart(charts.series_chart(series, "running", "Batch size", "running requests", names=names),
                    width="stretch")
    c3.altair_chart(charts.series_chart(series, "kv_used_fraction", "KV-cache use", "share of KV blocks", True,
                                        names), width="stretch")
    st.caption("Time averages over equal time bins, summed over replicas (KV use: mean over replicas).")


def _load_curve(configs: dict[str, str], s: Scenario) -> None:
    ss = st.session_state
    st.subheader("Latency against load")
    base_rate = s.workload.arrival.mean_rate if s.workload.arrival.process in RATE_BASED else 1.0
    default = ", ".join(f"{base_rate * m:.3g}" for m in LOAD_MULTIPLIERS)
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    text = c1.text_input("Arrival rates to simulate (requests/s)", value=default, key="whatif.rates_text")
    if c2.button("Run the load sweep", icon=":material/show_chart:", width="stretch"):
        try:
            ss[SWEEP] = parse_rates(text)
        except InputError as err:
            st.error(error_line(err)[1])
    rates = ss.get(SWEEP)
    if not rates:
        st.caption("Simulates every configuration shown above at each rate and plots p50/p99 latency against "
                   "the throughput reached, with the SLO as a dashed line.")
        return
    rows, bar = [], st.progress(0.0, text="Load sweep")
    total, k = len(rates) * len(configs), 0
    for name, y in configs.items():
        sc = scenario_from_yaml(y)
        if sc.workload.arrival.process not in RATE_BASED:
            st.info(f"{name}: arrival process {sc.workload.arrival.process} has no rate to sweep.")
            continue
        for r in rates:
            k += 1
            bar.progress(k / total, text=f"Load sweep: {name} at {r:g} req/s ({k} of {total})")
            try:
                sm = run_scenario(scenario_yaml(with_rate(sc, r)), _label=f"{name} at {r:g} req/s").summary
            except (ServesimError, ValidationError) as err:
                st.error(f"{name} at {r:g} req/s: {error_line(err)[1]}")
                continue
            for metric in ("ttft", "tpot"):
                for p in ("p50", "p99"):
                    rows.append({"config": name, "rate": r, "throughput": sm["throughput_output_tokens_per_s"],
                                 "metric": metric, "percentile": p, "value": sm[f"{metric}_s"][p]})
    bar.empty()
    if not rows:
        return
    df = pd.DataFrame(rows).dropna(subset=["value"])
    names = list(configs)
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.latency_load_chart(df, "ttft", "TTFT against throughput", s.slo.ttft_s, names),
                    width="stretch")
    c2.altair_chart(charts.latency_load_chart(df, "tpot", "TPOT against throughput", s.slo.tpot_s, names),
                    width="stretch")


def _save(yaml_text: str, default_name: str) -> None:
    ss = st.session_state
    name = (ss.get("whatif.save_name") or "").strip() or default_name
    ss.setdefault(SAVED, {})[name] = yaml_text
    ss["whatif.compare"] = [n for n in ss.get("whatif.compare", []) if n != name]


def _delete(name: str) -> None:
    ss = st.session_state
    ss.get(SAVED, {}).pop(name, None)
    ss["whatif.compare"] = [n for n in ss.get("whatif.compare", []) if n != name]


def _saved_panel(current: str, s: Scenario) -> None:
    saved: dict[str, str] = st.session_state.setdefault(SAVED, {})
    with st.expander(f"Saved configurations ({len(saved)})", expanded=not saved):
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.text_input("Name for the current configuration", key="whatif.save_name",
                      placeholder=s.name or f"config {len(saved) + 1}")
        c2.button("Save", on_click=_save, args=(current, s.name or f"config {len(saved) + 1}"),
                  icon=":material/bookmark_add:", width="stretch")
        for name, y in list(saved.items()):
            c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="center")
            c1.markdown(f"**{name}**  \n`{' '.join(cli_overrides(scenario_from_yaml(y)).split()[2:]) or 'default'}`")
            c2.button("Load", key=f"whatif.load.{name}", on_click=load_into_form, args=(y,), width="stretch")
            c3.button("Delete", key=f"whatif.delete.{name}", on_click=_delete, args=(name,), width="stretch")


def render() -> None:
    """Draw the What-if page."""
    ss = st.session_state
    st.title("What-if")
    st.caption("One serving configuration under one workload: latency percentiles, throughput and goodput, "
               "with charts you can overlay for saved configurations. Precision settings change memory and "
               "speed only: quantization quality loss is out of scope.")
    _ensure_current()
    current: str = ss[CURRENT]
    s = scenario_from_yaml(current)
    init_widgets(s)
    _sync_url(s)
    failed: dict[str, tuple[str, str]] = ss.setdefault(FAILED, {})
    errors = dict(ss.get(ERRORS, {}))
    if current in failed:
        field, msg = failed[current]
        errors[field or "scenario"] = msg
    render_sidebar(current, errors)
    if ss.get(URL_ERROR):
        st.error(ss.pop(URL_ERROR))
    if ss.get(ERRORS):
        st.warning("The form has an error (shown next to the field in the sidebar); the results below are for "
                   "the last scenario that ran.", icon=":material/edit_note:")
    if current in failed:
        st.error(failed[current][1], icon=":material/error:")
        st.info("Change the field named above in the sidebar and press Run simulation.")
        return
    try:
        out = run_scenario(current, _label="Simulating")
    except (ServesimError, ValidationError) as err:
        failed[current] = error_line(err)
        st.rerun()
    me = _label(s, current)
    saved: dict[str, str] = ss.setdefault(SAVED, {})
    st.markdown(f"##### {s.name or 'Unnamed scenario'}")
    _headline(out, s)
    compare = st.multiselect("Compare with saved configurations", [n for n in saved if n != me],
                             key="whatif.compare", placeholder="save configurations below, then pick them here")
    configs = {me: current, **{n: saved[n] for n in compare if n in saved}}
    outputs: dict[str, RunOutput] = {me: out}
    for name in compare:
        try:
            outputs[name] = run_scenario(saved[name], _label=f"Simulating {name}")
        except (ServesimError, ValidationError) as err:
            st.error(f"{name}: {error_line(err)[1]}")
            configs.pop(name, None)
    if len(outputs) > 1:
        st.dataframe(_table(outputs, configs), hide_index=True, width="stretch")
    _charts(outputs, s)
    _load_curve(configs, s)
    _saved_panel(current, s)
    with st.expander("Scenario as YAML and as a command line"):
        st.code(current, language="yaml")
        st.code(cli_overrides(s), language="bash")
        st.caption("The page's URL holds the same overrides, so a link reproduces this scenario.")


if __name__ == "__main__":
    render()
