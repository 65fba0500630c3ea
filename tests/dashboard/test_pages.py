"""Capacity plan, API vs self-host, Calibration and Sweeps pages: defaults, edited inputs, bad input."""
from __future__ import annotations

import pytest

pytest.importorskip("streamlit", reason="the dashboard needs the 'app' extra: pip install -e '.[app]'")
pytest.importorskip("altair", reason="the dashboard needs the 'app' extra: pip install -e '.[app]'")

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from simulator.config.loader import load_scenario
from simulator.engine.simulate import simulate
from simulator.metrics.summary import summarize
from simulator.planning.api_prices import api_price
from simulator.planning.cost import SECONDS_PER_DAY, workload_mix
from simulator.planning.planner import PlanSettings, plan
from simulator.planning.runner import run_sweep
from simulator.planning.sweep import SweepSpec

from .conftest import ROOT, chart_data, charts, metrics, no_exception, open_app

BASE = load_scenario(None, {"workload.requests": 200})      # the What-if scenario of open_app()


def submit(at, label: str, timeout: float = 60):
    next(b for b in at.form_submit_button if b.label == label).click().run(timeout=timeout)
    return at


# ---------------------------------------------------------------- capacity plan

def test_capacity_default_visit_plans_at_once():
    at = open_app("capacity")
    no_exception(at)
    assert not at.error
    table = at.dataframe[0].value
    assert len(table) >= 1 and list(table["Cost ($/h)"]) == sorted(table["Cost ($/h)"])
    assert len(charts(at)) >= 1


def test_capacity_edited_settings_match_the_planner():
    at = open_app("capacity")
    at.number_input(key="capacity.w.target_rate").set_value(20.0)
    at.multiselect(key="capacity.w.gpus").set_value(["h100-sxm"])
    at.pills(key="capacity.w.tp").set_value([1, 2])
    at.pills(key="capacity.w.weight_dtypes").set_value(["bf16"])
    at.number_input(key="capacity.w.requests").set_value(100)
    submit(at, "Find the cheapest plans")
    no_exception(at)
    want = plan(BASE, PlanSettings(target_rate=20.0, gpus=("h100-sxm",), tp=(1, 2), pp=(1,),
                                   weight_dtypes=("bf16",), max_batch_sizes=(256,), max_batched_tokens=(8192,),
                                   requests=100))
    table = at.dataframe[0].value
    assert list(table["Plan"]) == [p["candidate"] for p in want["plans"]]
    assert list(table["Replicas"]) == [p["replicas"] for p in want["plans"]]
    assert table["Cost ($/h)"].tolist() == pytest.approx([round(p["cost_per_hour"], 3) for p in want["plans"]])
    best = want["plans"][0]
    assert metrics(at)["Cost"] == f"${best['cost_per_hour']:,.2f}/h"
    # cost = replicas × GPUs per replica × the offer's $/GPU-hour
    assert best["cost_per_hour"] == pytest.approx(best["gpus"] * best["price"]["usd_per_gpu_hour"])
    pareto = {p["candidate"] for p in want["pareto"]}
    assert set(table.loc[table["Pareto-optimal"], "Plan"]) == pareto


@pytest.mark.parametrize("setup,needle", [
    (lambda at: at.number_input(key="capacity.w.requests").set_value(10), "requests"),
    (lambda at: at.pills(key="capacity.w.tp").set_value([]), "tp: got []; pick at least one value"),
])
def test_capacity_bad_settings_show_an_error(setup, needle):
    at = open_app("capacity")
    setup(at)
    submit(at, "Find the cheapest plans")
    no_exception(at)
    assert any(needle in e.value for e in at.sidebar.error), [e.value for e in at.error]


# ---------------------------------------------------------------- API vs self-host

def test_costs_page_prices_match_hand_computation():
    at = open_app("costs")
    at.number_input(key="costs.w.rate_per_replica").set_value(10.0)
    at.number_input(key="costs.w.gpu_price").set_value(2.5)
    at.multiselect(key="costs.w.apis").set_value(["openai:gpt-4o-mini"])
    submit(at, "Compare")
    no_exception(at)
    assert not at.error
    mix = workload_mix(summarize(simulate(BASE)))
    volume = BASE.workload.arrival.rate * mix.tokens * SECONDS_PER_DAY       # the scenario's own load
    capacity = 10.0 * mix.tokens * SECONDS_PER_DAY
    hours = max(24, math.ceil(24 * volume / capacity))                         # 8 of 10 req/s: 24
    assert hours == 24
    assert metrics(at)["Self-host"] == f"${hours * 2.5:,.2f}/day"
    p = api_price("openai:gpt-4o-mini", prompt_tokens=mix.prompt_tokens)
    per_token = (mix.prompt_tokens * p.input_per_mtok + mix.output_tokens * p.output_per_mtok) / 1e6 / mix.tokens
    table = at.dataframe[1].value.set_index("option")
    assert table.loc["openai:gpt-4o-mini", "USD/day"] == pytest.approx(per_token * volume, abs=0.006)
    # the chart draws both daily bills and marks where they cross
    data = chart_data(charts(at)[0])
    lines = next(d for d in data if "option" in d and len(d) > 10)
    self_line = lines[lines["option"].str.startswith("self-host")]
    assert self_line["usd_per_day"].min() == pytest.approx(24 * 2.5)
    marks = next(d for d in data if "option" in d and len(d) == 1)
    assert marks["tokens_per_day"].iloc[0] == pytest.approx(24 * 2.5 / per_token)


def test_costs_bad_volume_is_reported_next_to_the_field():
    at = open_app("costs")
    at.number_input(key="costs.w.rate_per_replica").set_value(10.0)
    at.text_input(key="costs.w.volume").set_value("lots")
    submit(at, "Compare")
    no_exception(at)
    assert any("tokens per day" in e.value for e in at.sidebar.error)


def test_edited_api_prices_are_used_and_marked():
    from simulator.dashboard.costs import PRICE_COLUMNS, prices_from_table

    table = pd.DataFrame([["x:m", 1.0, 0.5, 2.0, None, None, "pkg", "2026-01-01"],
                          ["y:n", 3.0, 3.0, 6.0, 1.5, 3.0, "pkg", "2026-01-01"]], columns=PRICE_COLUMNS)
    edited = table.copy()
    edited.loc[1, "output $/M"] = 9.0
    a, b = prices_from_table(table, edited, "2026-11-22")
    assert (a.model, a.provider, a.output_per_mtok, a.source, a.batch_input_per_mtok) == ("m", "x", 2.0, "pkg", None)
    assert (b.output_per_mtok, b.source, b.date) == (9.0, "edited on the dashboard", "2026-11-22")
    edited.loc[0, "input $/M"] = -1.0
    with pytest.raises(Exception, match="must be >= 0"):
        prices_from_table(table, edited, "2026-11-22")


# ---------------------------------------------------------------- calibration

def measured_rows(folder: Path) -> int:
    n = 0
    for name in ("gemm", "attention_prefill", "attention_decode", "memory"):
        path = folder / f"{name}.csv"
        if path.is_file():
            with path.open() as f:
                n += sum(1 for r in csv.DictReader(f) if float(r["flops"] or 0) > 0)
    return n


def test_calibration_page_plots_every_measured_kernel_under_the_roofline():
    data = ROOT / "calibration" / "data"
    measured = sorted(p.name for p in data.glob("*") if p.is_dir()) if data.is_dir() else []
    at = open_app("calibration")
    no_exception(at)
    assert not at.error
    status = at.dataframe[-1].value
    from simulator.catalog.gpus import list_gpus, load_gpu
    assert list(status["profile"]) == list_gpus()
    assert list(status["status"]) == [load_gpu(g).efficiency.status for g in list_gpus()]
    validation = ROOT / "docs" / "validation"
    gpu_name = at.selectbox(key="calib.gpu").value
    whole = pd.read_csv(validation / "whole_model.csv") if (validation / "whole_model.csv").is_file() else None
    whole = whole[whole["gpu"] == gpu_name] if whole is not None else None
    assert len(charts(at)) == 1 + (whole is not None and len(whole) > 0)
    if whole is not None and len(whole):
        # the predicted-vs-measured chart shows every documented point
        pts = next(d for d in chart_data(charts(at)[1]) if "predicted_s" in d)
        assert sorted(pts["predicted_s"]) == pytest.approx(sorted(whole["predicted_kernel_s"]))
        summary = next(t.value for t in at.dataframe if "kernel time median error %" in t.value.columns)
        assert summary["points"].sum() == len(whole)
        for _, r in summary.iterrows():
            g = whole[(whole["model"] == r["model"]) & (whole["phase"] == r["phase"])]
            assert r["kernel time median error %"] == pytest.approx(round(g["kernel_err"].abs().median() * 100, 1))
    layers = chart_data(charts(at)[0])
    roofs = next(d for d in layers if "roof" in d)
    gpu = load_gpu(at.selectbox(key="calib.gpu").value)
    # the memory roof is intensity × bandwidth, the compute roof the dense peak
    low = roofs[roofs["intensity"] < 1.0]
    assert np.allclose(low["tflops"], low["intensity"] * gpu.memory_bandwidth / 1e12)
    assert roofs["tflops"].max() == pytest.approx(max(gpu.peak_flops(d) for d in ("bf16", "fp8")
                                                      if gpu.has_dtype(d)) / 1e12)
    if not measured:
        pytest.skip("no calibration/data folder in this checkout")
    pts = next(d for d in layers if "kind" in d)
    assert len(pts) == measured_rows(data / gpu.name)
    held_out = next(t.value for t in at.dataframe if "curve" in t.value.columns)   # re-fit from the CSVs
    assert {"gemm_bf16", "attention_decode"} <= set(held_out["curve"])
    assert (held_out["held-out median error %"] >= 0).all()


def test_calibration_missing_folder_is_an_error_not_an_exception(tmp_path):
    at = open_app("calibration")
    at.text_input(key="calib.root").set_value(str(tmp_path / "nope")).run()
    no_exception(at)
    assert any("no such folder" in e.value for e in at.sidebar.error)
    assert any("No measured kernels" in i.value for i in at.info)


@pytest.mark.parametrize("page,key", [("calibration", "calib.root"), ("sweeps", "sweeps.path")])
@pytest.mark.parametrize("path", ["a" * 5000, "/" + "b" * 300, "x\x00y"])
def test_path_no_file_system_holds_is_an_error_not_an_exception(page, key, path):
    """Found by the page fuzz: a 5,000-character folder name raised OSError (file name too long)."""
    at = open_app(page)
    at.text_input(key=key).set_value(path).run()
    no_exception(at)
    assert any("path" in e.value for e in at.sidebar.error), [e.value for e in at.sidebar.error]


# ---------------------------------------------------------------- sweeps

@pytest.fixture(scope="module")
def sweep_results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    base = yaml.safe_load(BASE.model_dump_json()) | {"workload": {
        "arrival": {"process": "poisson", "rate": 4.0}, "requests": 120,
        "prompt_tokens": {"dist": "fixed", "value": 512}, "output_tokens": {"dist": "fixed", "value": 64}}}
    spec = SweepSpec(base=base, axes={"deployment.tp": [1, 2], "workload.arrival.rate": [2.0, 6.0, 10.0]})
    run_sweep(spec, base, out, flush_every_s=0.0)
    return out / "results.parquet"


def test_sweeps_heatmap_and_pareto_front(sweep_results):
    at = open_app("sweeps", query={"workload.requests": "200", "results": str(sweep_results)})
    no_exception(at)
    assert not at.error
    df = pd.read_parquet(sweep_results)
    assert len(charts(at)) >= 1
    cells = next(d for d in chart_data(charts(at)[0]) if "count" in d)
    for _, c in cells.iterrows():
        want = df[(df["deployment.tp"] == c["deployment_tp"])
                  & (df["workload.arrival.rate"] == c["workload_arrival_rate"])]["goodput_requests_per_s"].mean()
        assert c["goodput_requests_per_s"] == pytest.approx(want)
    # Pareto front of (max throughput, min p99 TTFT), checked by brute force
    x, y = df["throughput_output_tokens_per_s"].to_numpy(), df["ttft_p99"].to_numpy()
    front = {i for i in range(len(df))
             if not any(x[j] >= x[i] and y[j] <= y[i] and (x[j] > x[i] or y[j] < y[i]) for j in range(len(df)))}
    shown = at.dataframe[0].value
    assert sorted(shown["throughput_output_tokens_per_s"]) == pytest.approx(sorted(x[list(front)]))


def test_sweeps_filter_drops_points(sweep_results):
    at = open_app("sweeps", query={"workload.requests": "200", "results": str(sweep_results)})
    at.multiselect(key="sweeps.filter.deployment.tp").set_value([2]).run()
    no_exception(at)
    cells = next(d for d in chart_data(charts(at)[0]) if "count" in d)
    assert set(cells["deployment_tp"]) == {2}


def test_sweeps_bad_file_is_an_error(tmp_path):
    bad = tmp_path / "results.parquet"
    bad.write_text("not parquet")
    at = open_app("sweeps", query={"results": str(bad)})
    no_exception(at)
    assert any("not Parquet" in e.value for e in at.error)
    assert not charts(at)
    at2 = open_app("sweeps", query={"results": str(tmp_path / "missing.parquet")})
    no_exception(at2)
    assert any("no such file" in e.value for e in at2.sidebar.error)


def test_every_page_runs_with_defaults_without_errors():
    at = open_app()
    for page in ("capacity", "costs", "calibration", "sweeps", "whatif"):
        at.switch_page(f"simulator/dashboard/{page}.py").run(timeout=60)
        no_exception(at)
        assert not at.error, (page, [e.value for e in at.error])
    assert "TTFT p50" in metrics(at)   # back on What-if, its numbers are shown again


def test_sweeps_runs_an_example_sweep(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    at = open_app("sweeps")
    assert not charts(at) and at.info                       # nothing loaded yet: says how to load
    example = next(o for o in at.selectbox(key="sweeps.example").options if "tp-rate" in str(o))
    at.selectbox(key="sweeps.example").set_value(ROOT / "examples" / "sweeps" / example).run()
    next(b for b in at.button if b.label == "Run the example").click().run(timeout=120)
    no_exception(at)
    results = tmp_path / "servesim-dashboard" / "sweeps" / "tp-rate" / "results.parquet"
    df = pd.read_parquet(results)
    assert len(df) == 12 and len(charts(at)) == 2
    cells = next(d for d in chart_data(charts(at)[0]) if "count" in d)
    assert len(cells) == 12 and (cells["count"] == 1).all()


@pytest.mark.parametrize("page", ["capacity", "costs"])
def test_planning_pages_explain_a_workload_without_a_rate(page):
    at = open_app(page, query={"workload.requests": "200", "workload.arrival": "{process: offline}"})
    no_exception(at)
    assert any(e.value.startswith("workload.arrival.process: got 'offline'") for e in at.error)


def test_costs_page_without_genai_prices_says_how_to_install(monkeypatch):
    import streamlit as st

    from simulator.errors import InputError
    from simulator.planning import api_prices

    def absent():
        raise InputError("--api", api_prices.PACKAGE, "API prices need the genai-prices package")

    monkeypatch.setattr(api_prices, "_snapshot", absent)
    st.cache_data.clear()
    try:
        at = open_app("costs")
        no_exception(at)
        assert any("genai-prices" in i.value and "pip install" in i.value for i in at.info)
    finally:
        st.cache_data.clear()
