"""Capacity plan page: the throughput-interactivity chart, the winning layout, readable columns, and
no cost chart where every plan costs the same."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("streamlit", reason="the dashboard needs the 'app' extra: pip install -e '.[app]'")
pytest.importorskip("altair", reason="the dashboard needs the 'app' extra: pip install -e '.[app]'")

from simulator.config.loader import load_scenario
from simulator.planning.planner import PlanSettings, plan

from simulator.dashboard.capacity import COLUMNS, layout_text

from .conftest import chart_data, chart_spec, charts, no_exception, open_app

BASE = load_scenario(None, {"workload.requests": 200})      # the What-if scenario of open_app()
TWO_GPUS = dict(target_rate=20.0, gpus=("h100-sxm", "a100-80gb"), tp=(1, 2), pp=(1,), weight_dtypes=("bf16",),
               max_batch_sizes=(256,), max_batched_tokens=(8192,), requests=100)


def _submit(at, **widgets):
    for key, value in widgets.items():
        widget = {"gpus": at.multiselect, "target_rate": at.number_input, "requests": at.number_input}.get(key, at.pills)
        widget(key=f"capacity.w.{key}").set_value(value)
    next(b for b in at.form_submit_button if b.label == "Find the cheapest plans").click().run(timeout=120)
    no_exception(at)
    return at


def _points(at):
    """The plan points of the interactivity chart (the dataset with a row per plan)."""
    chart = next(p for p in charts(at) if "tokens/s per user" in p.spec)
    frames = [d for d in chart_data(chart) if "tokens_per_s_per_user" in d.columns]
    return chart, max(frames, key=len)


def test_interactivity_chart_matches_hand_computed_axes_and_slo_line():
    at = _submit(open_app("capacity"), target_rate=20.0, gpus=["h100-sxm", "a100-80gb"], tp=[1, 2],
                 weight_dtypes=["bf16"], requests=100, kinds=["aggregated"])
    res = plan(BASE, PlanSettings(**TWO_GPUS, kinds=("aggregated",)))
    chart, pts = _points(at)
    assert len(pts) >= 2 and pts["on_front"].any()
    assert sorted(pts["candidate"]) == sorted(r["candidate"] for r in res["plans"])
    for r in res["plans"]:     # tokens/s per GPU = target rate x mean output / GPUs; per user = 1 / p99 TPOT
        row = pts[pts["candidate"] == r["candidate"]].iloc[0]
        assert row["tokens_per_s_per_gpu"] == pytest.approx(20.0 * res["mean_output_tokens"] / r["gpus"])
        assert row["tokens_per_s_per_user"] == pytest.approx(1.0 / r["tpot_p99"])
    rules = [d for d in chart_data(chart) if "slo" in d.columns]
    assert rules and rules[0]["slo"].iloc[0] == pytest.approx(1.0 / BASE.slo.tpot_s)     # 10 tokens/s per user
    spec = chart_spec(chart)
    titles = {layer["encoding"]["x"].get("title") for layer in spec["layer"] if "x" in layer.get("encoding", {})}
    assert "tokens/s per user (1 / p99 TPOT)" in titles


def test_one_cost_draws_no_cost_axis_and_says_why():
    """One GPU type at TP 1 only: every plan has the same cost, so a cost axis would have one value."""
    at = _submit(open_app("capacity"), target_rate=20.0, gpus=["h100-sxm"], tp=[1], weight_dtypes=["bf16"],
                 requests=100, kinds=["aggregated"])
    table = at.dataframe[0].value
    costs = table[COLUMNS["cost"]].unique()
    assert len(costs) == 1
    assert not any("cost (USD per hour)" in p.spec for p in charts(at))
    assert any(f"${costs[0]:,.2f}/h" in i.value and "not drawn" in i.value for i in at.info)


def test_cost_axis_has_dollar_labels_when_costs_differ():
    """H100 and A100 at TP 1 and 2: plans of different costs, so the cost charts are drawn with $ labels."""
    at = _submit(open_app("capacity"), target_rate=20.0, gpus=["h100-sxm", "a100-80gb"], tp=[1, 2],
                 weight_dtypes=["bf16"], requests=100, kinds=["aggregated"])
    table = at.dataframe[0].value
    assert table[COLUMNS["cost"]].nunique() >= 2
    assert not at.info
    cost = [chart_spec(p) for p in charts(at) if "cost (USD per hour)" in p.spec]
    assert len(cost) == 2
    for spec in cost:
        x = next(layer["encoding"]["x"] for layer in spec["layer"])
        assert x["axis"]["format"] == "$,.2f"


def test_columns_are_readable_and_the_layout_that_won_is_named():
    at = _submit(open_app("capacity"), target_rate=20.0, gpus=["h100-sxm"], tp=[1, 2], weight_dtypes=["bf16"],
                 requests=100, kinds=["aggregated", "disaggregated"])
    table = at.dataframe[0].value
    assert list(table.columns) == list(COLUMNS.values())
    assert not [c for c in table.columns if "_" in c]
    res = plan(BASE, PlanSettings(**dict(TWO_GPUS, gpus=("h100-sxm",)), kinds=("aggregated", "disaggregated")))
    assert set(table[COLUMNS["layout"]]) == {r["layout"] for r in res["plans"]}
    text = layout_text(res["layouts"])
    assert text and any(text == m.value for m in at.markdown)


def test_layout_text_states_the_margin():
    lay = {"winner": "disaggregated", "best": "2P1D h100", "best_aggregated": "h100 tp2", "best_other": "2P1D h100",
           "compared_by": "cost_per_hour", "aggregated": 40.0, "other": 30.0, "other_layout": "disaggregated",
           "ratio": 0.75}
    text = layout_text(lay)
    assert "**disaggregated (prefill/decode pools)**" in text
    assert "$30.00/h" in text and "$40.00/h" in text and "25.0% below" in text
    lost = dict(lay, winner="aggregated", best="h100 tp2", aggregated=30.0, other=36.0, ratio=1.2)
    assert "20.0% above" in layout_text(lost)
    assert "no other layout" in layout_text({"winner": "aggregated", "best": "h100 tp2"})
    assert layout_text(None) is None


def test_no_layout_picked_is_an_error_next_to_the_field():
    at = open_app("capacity")
    at.pills(key="capacity.w.kinds").set_value([])
    next(b for b in at.form_submit_button if b.label == "Find the cheapest plans").click().run()
    no_exception(at)
    assert any("kinds: got []; pick at least one value" in e.value for e in at.sidebar.error)


def test_mixed_pools_checkbox_reaches_the_planner():
    at = open_app("capacity")
    box = at.checkbox(key="capacity.w.mixed_pools")
    assert box.value is False and json.loads(at.session_state["capacity.settings"])["mixed_pools"] is False
    box.check()
    at = _submit(at, target_rate=20.0, gpus=["h100-sxm"], tp=[1], weight_dtypes=["bf16"])
    assert json.loads(at.session_state["capacity.settings"])["mixed_pools"] is True
