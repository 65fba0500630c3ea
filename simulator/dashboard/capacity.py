"""Capacity plan page: the cheapest deployments (GPU × TP × PP × precision × batching limits) that
serve a target request rate within the What-if scenario's SLOs (``simulator.planning.planner``)."""
from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from simulator.config.loader import validate
from simulator.config.scenario import Deployment
from simulator.errors import InputError, ServesimError
from simulator.planning.interactivity import interactivity_points, slo_tokens_per_user
from simulator.planning.planner import PlanSettings, plan
from simulator.planning.prices import PRICE_KINDS, load_prices

from simulator.dashboard import charts, page_path
from simulator.dashboard.scenario_form import choices
from simulator.dashboard.scenario_io import describe, error_line, fmt_seconds, scenario_from_yaml, scenario_yaml
from simulator.dashboard.state import constant_rate_error, current_scenario, show_errors

SETTINGS = "capacity.settings"    # JSON of the PlanSettings last submitted
ERRORS = "capacity.errors"
K = "capacity.w."                 # widget key prefix

#: What the plans table calls each column.
COLUMNS = {"plan": "Plan", "layout": "Layout", "replicas": "Replicas", "gpus": "GPUs", "cost": "Cost ($/h)",
           "per_m": "$ per M output tokens", "rate": "Max req/s per replica", "ttft": "p99 TTFT (ms)",
           "tpot": "p99 TPOT (ms)", "attainment": "SLO attainment", "pareto": "Pareto-optimal", "price": "Price"}
LAYOUTS = {"aggregated": "aggregated", "disaggregated": "disaggregated (prefill/decode pools)",
           "wide_ep": "wide expert parallelism"}


@st.cache_data(max_entries=32, show_spinner=False)
def run_plan(yaml_text: str, settings_json: str) -> dict[str, Any]:
    """``plan`` of a scenario (YAML) under settings (JSON), cached by both; a progress bar while it runs."""
    bar = st.progress(0.0, text="Planning: screening candidates")

    def tick(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Planning: {done} of {total} candidates searched")

    try:
        return plan(scenario_from_yaml(yaml_text), PlanSettings.model_validate_json(settings_json), progress=tick)
    finally:
        bar.empty()


def _settings_from_widgets() -> dict[str, Any]:
    ss = st.session_state
    provider = (ss[K + "provider"] or "").strip() or None
    return {"target_rate": ss[K + "target_rate"], "attainment": ss[K + "attainment"], "requests": ss[K + "requests"],
            "max_gpus": ss[K + "max_gpus"] or None, "gpus": tuple(ss[K + "gpus"]) or None,
            "tp": tuple(sorted(ss[K + "tp"])), "pp": tuple(sorted(ss[K + "pp"])),
            "weight_dtypes": tuple(ss[K + "weight_dtypes"]),
            "max_batch_sizes": tuple(sorted(ss[K + "max_batch_sizes"])),
            "max_batched_tokens": tuple(sorted(ss[K + "max_batched_tokens"])), "price_kind": ss[K + "price_kind"],
            "provider": provider, "workers": ss[K + "workers"], "kinds": tuple(ss[K + "kinds"]),
            "mixed_pools": ss[K + "mixed_pools"]}


def on_submit() -> None:
    """Form callback: validate the planner settings; keep them or record the one-line error."""
    ss = st.session_state
    data = _settings_from_widgets()
    empty = [k for k in ("kinds", "tp", "pp", "weight_dtypes", "max_batch_sizes", "max_batched_tokens")
             if not data[k]]
    if empty:
        ss[ERRORS] = {empty[0]: str(InputError(empty[0], [], "pick at least one value"))}
        return
    try:
        settings = validate(PlanSettings, data)
    except (ServesimError, ValidationError) as err:
        field, msg = error_line(err)
        ss[ERRORS] = {field: msg}
        return
    ss[SETTINGS], ss[ERRORS] = settings.model_dump_json(), {}


def _sidebar(base_rate: float, base_gpu: str) -> None:
    ss = st.session_state
    errors: dict[str, str] = ss.get(ERRORS, {})
    kind = ss.get(K + "price_kind", "on-demand")
    priced = load_prices().gpus(kind)
    defaults = {"target_rate": round(base_rate * 4, 3), "attainment": 0.99, "requests": 400, "max_gpus": 0,
                "gpus": [base_gpu] if base_gpu in priced else priced[:1], "tp": [1, 2, 4, 8], "pp": [1],
                "weight_dtypes": ["bf16", "fp8"], "max_batch_sizes": [256], "max_batched_tokens": [8192],
                "price_kind": "on-demand", "provider": "", "workers": 1, "kinds": list(LAYOUTS),
                "mixed_pools": False}
    for k, v in defaults.items():
        ss.setdefault(K + k, v)
    ss[K + "gpus"] = [g for g in ss[K + "gpus"] if g in priced]
    if SETTINGS not in ss:                 # first visit: plan with the defaults at once
        ss[SETTINGS] = validate(PlanSettings, _settings_from_widgets()).model_dump_json()
    with st.sidebar:
        st.header("Plan")
        st.selectbox("Price kind", PRICE_KINDS, key=K + "price_kind",
                     help="which offers of planning/data/gpu_prices.yaml price the GPUs")
        with st.form("capacity_form", border=False):
            st.number_input("Target rate (requests/s, all replicas)", min_value=0.0, step=1.0, key=K + "target_rate")
            show_errors(errors, "target_rate")
            st.number_input("SLO attainment (share of requests)", min_value=0.0, max_value=1.0, step=0.01,
                            format="%.3f", key=K + "attainment")
            show_errors(errors, "attainment")
            st.multiselect("GPUs (those with a price)", priced, key=K + "gpus", placeholder="every GPU")
            show_errors(errors, "gpus", "--gpus", "gpu")
            st.pills("Layouts", list(LAYOUTS), selection_mode="multi", key=K + "kinds", format_func=LAYOUTS.get,
                     help="colocated replicas; prefill and decode pools sized by rate matching (xPyD); "
                          "expert parallelism with data-parallel attention (MoE models only)")
            show_errors(errors, "kinds")
            st.checkbox("Prefill and decode on two GPU types", key=K + "mixed_pools",
                        help="disaggregated plans may pair the GPU with the cheapest prefill and the one with the "
                             "cheapest decode (about 1.5x the search time)")
            st.pills("Tensor parallel (TP)", [1, 2, 4, 8], selection_mode="multi", key=K + "tp")
            st.pills("Pipeline parallel (PP)", [1, 2, 4], selection_mode="multi", key=K + "pp")
            show_errors(errors, "tp", "pp")
            st.pills("Weight precision", choices(Deployment, "weight_dtype"), selection_mode="multi",
                     key=K + "weight_dtypes", help="memory and speed only: quantization quality loss is out of scope")
            show_errors(errors, "weight_dtypes")
            st.pills("Max batch (requests)", [16, 32, 64, 128, 256, 512], selection_mode="multi",
                     key=K + "max_batch_sizes")
            st.pills("Max tokens per step", [1024, 2048, 4096, 8192, 16384], selection_mode="multi",
                     key=K + "max_batched_tokens")
            show_errors(errors, "max_batch_sizes", "max_batched_tokens")
            st.number_input("Max GPUs in all (0 = no limit)", min_value=0, step=1, key=K + "max_gpus")
            show_errors(errors, "max_gpus")
            st.number_input("Requests per simulated evaluation", min_value=0, step=50, key=K + "requests")
            show_errors(errors, "requests")
            st.text_input("Provider (empty = cheapest of any)", key=K + "provider")
            st.number_input("Worker processes", min_value=1, max_value=os.cpu_count() or 1, step=1, key=K + "workers")
            st.form_submit_button("Find the cheapest plans", type="primary", on_click=on_submit, width="stretch",
                                  icon=":material/search:")
        for f, msg in errors.items():
            if f not in defaults and f not in ("--gpus", "gpu"):
                st.error(msg, icon=":material/error:")


def _round(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)


def _plans_table(res: dict[str, Any]) -> pd.DataFrame:
    front = {r["candidate"] for r in res["pareto"]}
    c = COLUMNS
    return pd.DataFrame([{c["plan"]: r["candidate"], c["layout"]: r["layout"], c["replicas"]: r["replicas"],
                          c["gpus"]: r["gpus"], c["cost"]: _round(r["cost_per_hour"], 3),
                          c["per_m"]: _round(r["cost_per_million_output_tokens"], 4),
                          c["rate"]: round(r["max_rate_per_replica"], 3), c["ttft"]: round(r["ttft_p99"] * 1e3, 1),
                          c["tpot"]: round(r["tpot_p99"] * 1e3, 2), c["attainment"]: round(r["slo_attainment"], 4),
                          c["pareto"]: r["candidate"] in front,
                          c["price"]: "none" if r["price"] is None else
                          f"{r['price']['provider']} ${r['price']['usd_per_gpu_hour']:.2f}/GPU-h "
                          f"({r['price']['date']})"} for r in res["plans"]], columns=list(c.values()))


def layout_text(lay: dict[str, Any] | None) -> str | None:
    """Which layout won and its margin over the best aggregated plan (Markdown), from ``plan()['layouts']``."""
    if not lay:
        return None
    won = f"Layout that won: **{LAYOUTS.get(lay['winner'], lay['winner'])}** ({lay['best']})"
    if "ratio" not in lay:
        other = "no other layout" if lay["winner"] == "aggregated" else "no aggregated plan"
        return f"{won}; {other} made a plan (pruned, unreachable or not searched)."
    money = lay["compared_by"] == "cost_per_hour"

    def amount(v: float) -> str:
        return f"${v:,.2f}/h" if money else f"{v:g} GPUs"
    other = LAYOUTS.get(lay["other_layout"], lay["other_layout"])
    margin = (1.0 - lay["ratio"]) * 100.0
    verdict = f"{abs(margin):.1f}% {'below' if margin >= 0 else 'above'}"
    return (f"{won}. Best {other} plan: {amount(lay['other'])} ({lay['best_other']}), {verdict} the best "
            f"aggregated plan's {amount(lay['aggregated'])} ({lay['best_aggregated']}).")


def _headline(res: dict[str, Any]) -> None:
    best = res["plans"][0]
    st.markdown(f"Cheapest plan: **{best['replicas']} × {best['candidate']}** "
                f"(GPU, TP, PP, weights, max batch / max tokens per step)")
    cols = st.columns(5)
    cols[0].metric("Replicas", f"{best['replicas']}")
    cols[1].metric("GPUs", f"{best['gpus']}")
    price = best["price"]
    if price is None:
        cols[2].metric("Cost", "no price", help=f"no {res['price_kind']} price for this GPU: ranked by GPUs")
        cols[3].metric("$ per M output tokens", "-")
    else:
        cols[2].metric("Cost", f"${best['cost_per_hour']:,.2f}/h",
                       help=f"{price['provider']} {price['kind']} ${price['usd_per_gpu_hour']:.2f}/GPU-h "
                            f"({price['date']}; {price['source']})")
        cols[3].metric("$ per M output tokens", f"{best['cost_per_million_output_tokens']:,.3f}")
    cols[4].metric("p99 TTFT", fmt_seconds(best["ttft_p99"]), help=f"p99 TPOT {fmt_seconds(best['tpot_p99'])}")
    text = layout_text(res.get("layouts"))
    if text:
        st.markdown(text)


def _charts(res: dict[str, Any], df: pd.DataFrame) -> None:
    st.subheader("Throughput against interactivity")
    pts = pd.DataFrame(interactivity_points(res))
    slo = slo_tokens_per_user(res)
    st.altair_chart(charts.interactivity_chart(pts, slo), width="stretch")
    st.caption("Each plan at the target rate: output tokens/s per GPU against tokens/s each user sees (1 / p99 "
               "TPOT). Red: no other plan is better on both axes." +
               (f" Dashed: the TPOT SLO ({slo:,.1f} tokens/s per user); plans meet it at or right of the line."
                if slo else ""))
    c = COLUMNS
    costs = df[c["cost"]].dropna().unique()
    if len(costs) < 2:
        st.info(("Every priced plan costs " + f"${costs[0]:,.2f}/h" if len(costs) else "No plan has a price") +
                ": a cost axis would show one value, so cost against tail latency is not drawn.",
                icon=":material/info:")
        return
    st.subheader("Cost against tail latency")
    priced = df[df[c["cost"]].notna()]
    c1, c2 = st.columns(2)
    for col, y in ((c1, c["ttft"]), (c2, c["tpot"])):
        col.altair_chart(charts.pareto_chart(priced, c["cost"], y, front=c["pareto"], tooltip=[f"{c['plan']}:N"],
                                             line=False, x_title="cost (USD per hour)", y_title=y,
                                             x_format="$,.2f"), width="stretch")
    st.caption("Red: on the Pareto front of cost, p99 TTFT and p99 TPOT (no other plan is at least as good in "
               "all three and better in one).")


def _results(res: dict[str, Any]) -> None:
    c = res["counts"]
    st.caption(f"{c['candidates']} candidates, {c['screened_in']} passed the memory and bound checks, "
               f"{c['searched']} searched with {c['simulations']} simulations of {res['requests_per_evaluation']} "
               f"requests each, in {c['wall_s']:.1f} s.")
    if not res["plans"]:
        st.warning(f"No plan: {res['binding']}", icon=":material/block:")
    else:
        _headline(res)
        df = _plans_table(res)
        st.subheader("Plans, cheapest first")
        st.dataframe(df, hide_index=True, width="stretch")
        _charts(res, df)
    if res.get("excluded"):
        with st.expander(f"GPUs left out or unpriced ({len(res['excluded'])})"):
            st.markdown("\n".join(f"- {line}" for line in res["excluded"]))
    if res["rejected"]:
        with st.expander(f"Candidates ruled out ({len(res['rejected'])})"):
            out = pd.DataFrame(res["rejected"], columns=["candidate", "reason", "detail"])
            st.dataframe(out.rename(columns=str.capitalize), hide_index=True, width="stretch")


def render() -> None:
    """Draw the Capacity plan page."""
    st.title("Capacity plan")
    st.caption("For every candidate deployment, bisection finds the highest rate one replica serves while stable and "
               "within the SLOs; replicas = ceil(target / that rate); plans are ranked by GPU rental cost.")
    base = current_scenario()
    st.markdown(f"Model, workload and SLOs from the What-if page: {describe(base)}")
    st.page_link(page_path("whatif"), label="Edit them on the What-if page", icon=":material/tune:")
    a = base.workload.arrival
    err = constant_rate_error(base, "the planner")
    if err:
        st.error(err, icon=":material/error:")
        return
    _sidebar(a.rate, base.deployment.gpu)
    settings = st.session_state[SETTINGS]
    try:
        res = run_plan(scenario_yaml(base), settings)
    except (ServesimError, ValidationError) as err:
        st.error(error_line(err)[1], icon=":material/error:")
        return
    _results(res)
    with st.expander("Settings as JSON"):
        st.code(json.dumps(json.loads(settings), indent=1), language="json")


if __name__ == "__main__":
    render()
