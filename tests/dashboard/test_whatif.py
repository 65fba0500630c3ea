"""What-if page: numbers shown equal the simulator's own summary; edits, errors, URL and YAML round trips."""
from __future__ import annotations

import pytest

pytest.importorskip("streamlit", reason="the dashboard needs the 'app' extra: pip install -e '.[app]'")
pytest.importorskip("altair", reason="the dashboard needs the 'app' extra: pip install -e '.[app]'")

from pathlib import Path

import numpy as np
import yaml

from simulator.config.loader import load_scenario, scenario_from_dict
from simulator.engine.simulate import simulate
from simulator.metrics.summary import per_request, summarize
from simulator.planning.prices import load_prices

from .conftest import chart_data, chart_titles, charts, metrics, no_exception, open_app, seconds

FIXTURES = Path(__file__).resolve().parents[1] / "catalog" / "fixtures"


def expected(overrides: dict) -> dict:
    return summarize(simulate(load_scenario(None, {"workload.requests": 200, **overrides})))


def check_headline(at, sm: dict) -> None:
    shown = metrics(at)
    for block, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "E2E")):
        for p in ("p50", "p99"):
            got, want = seconds(shown[f"{label} {p}"]), sm[block][p]
            # shown as 0.1 ms under a second, 0.01 s above
            assert got == pytest.approx(want, abs=0.051e-3 if want < 1 else 0.0051), (label, p)
    assert float(shown["Throughput"].split()[0]) == pytest.approx(sm["throughput_requests_per_s"], abs=0.0051)
    out_tok = float(shown["Output tok/s"].replace(",", ""))
    assert out_tok == pytest.approx(sm["throughput_output_tokens_per_s"], abs=0.51)
    assert float(shown["Goodput"].split()[0]) == pytest.approx(sm["goodput_requests_per_s"], abs=0.0051)
    assert any(c.value.startswith(f"{sm['completed']:,} of {sm['requests']:,} requests completed") for c in at.caption)


def click_run(at):
    next(b for b in at.form_submit_button if b.label == "Run simulation").click().run()
    return at


def test_defaults_show_the_simulators_numbers_and_five_charts():
    at = open_app()
    no_exception(at)
    assert not at.error
    check_headline(at, expected({}))
    titles = chart_titles(at)
    assert len(charts(at)) == 5
    assert any(t.startswith("Time to first token") for t in titles)
    assert {"Queue length", "Batch size", "KV-cache use", "End-to-end latency"} <= set(titles)
    # the TTFT CDF holds the finished requests' TTFTs: its last point is the largest one, at fraction 1
    s = load_scenario(None, {"workload.requests": 200})
    df = per_request(simulate(s))
    ttft = df.loc[df["finished"], "ttft_s"].to_numpy()
    cdf = chart_data(charts(at)[0])[0]
    assert cdf["fraction"].max() == pytest.approx(1.0)
    assert cdf["value"].max() == pytest.approx(ttft.max())
    assert cdf["value"].min() == pytest.approx(ttft.min())
    # cost: 1 GPU at its cheapest on-demand list price, over the output tokens it makes in an hour
    sm = expected({})
    price = load_prices().offer("h100-sxm", "on-demand").usd_per_gpu_hour
    want = price / (sm["throughput_output_tokens_per_s"] * 3600) * 1e6
    assert float(metrics(at)["$/M output tok"]) == pytest.approx(want, abs=0.00051)


def test_edited_form_runs_the_edited_scenario_and_updates_the_url():
    at = open_app()

    def edit() -> None:
        at.number_input(key="sc:deployment.tp").set_value(2)
        at.number_input(key="sc:workload.arrival.rate").set_value(12.0)
        at.selectbox(key="sc:deployment.gpu").set_value("a100-sxm-80gb")

    # editing fields inside the form starts nothing: the numbers stay those of the default
    # (AppTest drops staged form values on a rerun without submit, so edit again before Run)
    edit()
    at.run()
    check_headline(at, expected({}))
    edit()
    click_run(at)
    no_exception(at)
    assert not at.error
    over = {"deployment.tp": 2, "workload.arrival.rate": 12.0, "deployment.gpu": "a100-sxm-80gb"}
    check_headline(at, expected(over))
    assert at.query_params["deployment.tp"] == "2"
    assert at.query_params["deployment.gpu"] == "a100-sxm-80gb"
    assert float(at.query_params["workload.arrival.rate"]) == 12.0


def test_url_parameters_reproduce_the_scenario():
    query = {"workload.requests": "200", "deployment.tp": "2",
             "workload.output_tokens": "{dist: fixed, value: 64}", "slo.ttft_s": "null"}
    at = open_app(query=query)
    no_exception(at)
    over = {"deployment.tp": 2, "workload.output_tokens": {"dist": "fixed", "value": 64}, "slo.ttft_s": None}
    check_headline(at, expected(over))
    # the form shows the scenario of the link
    assert at.number_input(key="sc:deployment.tp").value == 2
    assert at.selectbox(key="sc:workload.output_tokens.dist").value == "fixed"
    assert at.number_input(key="sc:workload.output_tokens.value").value == 64
    assert at.number_input(key="sc:slo.ttft_s").value == 0.0
    # and a second visit with the URL the page wrote shows the same numbers
    again = open_app(query=dict(at.query_params))
    assert metrics(again) == metrics(at)


def test_invalid_combination_shows_an_error_next_to_the_field_and_no_exception():
    at = open_app()
    at.number_input(key="sc:deployment.batching.max_batched_tokens").set_value(8)
    click_run(at)
    no_exception(at)
    errors = [e.value for e in at.sidebar.error]
    assert errors and "max_batched_tokens" in errors[0]
    # the previous results stay, with a warning saying so
    assert at.warning and len(charts(at)) == 5


@pytest.mark.parametrize("field,value,needle", [
    ("sc:deployment.tp", 3, "must divide"),                 # raised by the simulator, not the form
    ("sc:workload.arrival.rate", 0.0, "greater than 0"),   # raised by validation
])
def test_errors_are_one_line_messages_naming_the_field(field, value, needle):
    at = open_app()
    at.number_input(key=field).set_value(value)
    click_run(at)
    no_exception(at)
    shown = [e.value for e in at.error]
    assert any(needle in m and "\n" not in m for m in shown), shown
    assert any(m.startswith(field.split(".")[-1]) or field[3:] in m for m in at.sidebar.error.values), shown


def test_model_that_does_not_fit_is_reported_under_the_model_field():
    at = open_app()
    at.selectbox(key="sc:model").set_value("llama-3.1-405b")
    click_run(at)
    no_exception(at)
    assert any("does not fit" in e.value for e in at.sidebar.error)
    assert not charts(at)


def test_yaml_upload_loads_the_form_and_runs_it():
    text = yaml.safe_dump({"model": "qwen3-8b", "deployment": {"gpu": "h200-sxm"},
                           "workload": {"arrival": {"process": "gamma", "rate": 4.0, "cv": 2.0}, "requests": 200,
                                        "prompt_tokens": {"dist": "uniform", "low": 100, "high": 900},
                                        "output_tokens": {"dist": "fixed", "value": 50}},
                           "slo": {"ttft_s": 0.5, "tpot_s": 0.05}})
    at = open_app()
    at.file_uploader(key="whatif.yaml_upload").upload("mine.yaml", text.encode(), "application/x-yaml")
    at.run()
    no_exception(at)
    assert not at.error
    assert at.selectbox(key="sc:model").value == "qwen3-8b"
    assert at.selectbox(key="sc:workload.arrival.process").value == "gamma"
    assert at.number_input(key="sc:workload.prompt_tokens.high").value == 900
    check_headline(at, summarize(simulate(scenario_from_dict(yaml.safe_load(text)))))
    # the YAML shown (and offered for download) reads back to the same scenario
    shown = [c.value for c in at.code if c.language == "yaml"][0]
    assert scenario_from_dict(yaml.safe_load(shown)) == scenario_from_dict(yaml.safe_load(text))
    assert at.get("download_button")


def test_bad_yaml_upload_shows_one_line_error():
    at = open_app()
    at.file_uploader(key="whatif.yaml_upload").upload("bad.yaml", b"deployment: {tp: [", "application/x-yaml")
    at.run()
    no_exception(at)
    assert any("invalid YAML" in e.value for e in at.sidebar.error)


def test_uploaded_config_json_is_simulated():
    at = open_app()
    data = (FIXTURES / "llama.json").read_bytes()
    at.file_uploader(key="sc:model.upload").upload("config.json", data, "application/json")
    click_run(at)
    no_exception(at)
    assert not at.error
    model = at.selectbox(key="sc:model").value
    assert model.endswith(".json") and Path(model).read_bytes() == data
    check_headline(at, expected({"model": model}))


def test_bad_config_json_is_reported_under_the_model_field():
    at = open_app()
    at.file_uploader(key="sc:model.upload").upload("config.json", b'{"model_type": "llama"}', "application/json")
    click_run(at)
    no_exception(at)
    assert any("hidden_size" in e.value for e in at.sidebar.error)


def test_saved_configurations_are_compared_on_the_same_charts():
    at = open_app()
    at.text_input(key="whatif.save_name").set_value("one GPU")
    next(b for b in at.button if b.label == "Save").click().run()
    at.number_input(key="sc:deployment.tp").set_value(2)
    click_run(at)
    at.multiselect(key="whatif.compare").set_value(["one GPU"]).run()
    no_exception(at)
    assert len(charts(at)) == 5
    for proto in charts(at):
        configs = set(np.concatenate([d["config"].unique() for d in chart_data(proto) if "config" in d]))
        assert configs == {"current", "one GPU"}
    table = at.dataframe[0].value
    assert list(table["configuration"]) == ["current", "one GPU"]
    one = expected({})
    assert table.set_index("configuration").loc["one GPU", "TTFT p99 (ms)"] == pytest.approx(
        one["ttft_s"]["p99"] * 1e3, abs=0.051)


def test_load_sweep_plots_latency_against_throughput_with_slo_lines():
    at = open_app()
    at.text_input(key="whatif.rates_text").set_value("2, 6")
    next(b for b in at.button if b.label == "Run the load sweep").click().run()
    no_exception(at)
    assert len(charts(at)) == 7
    ttft = charts(at)[5]
    data = [d for d in chart_data(ttft) if "throughput" in d][0]
    assert sorted(data["rate"].unique()) == [2.0, 6.0]
    for r in (2.0, 6.0):
        sm = expected({"workload.arrival.rate": r})
        row = data[(data["rate"] == r) & (data["percentile"] == "p99")].iloc[0]
        assert row["value"] == pytest.approx(sm["ttft_s"]["p99"])
        assert row["throughput"] == pytest.approx(sm["throughput_output_tokens_per_s"])
    # the SLO (TPOT 0.1 s of the default scenario) is drawn as a rule at 100 ms
    tpot_layers = chart_data(charts(at)[6])
    assert any("ms" in d and list(d["ms"]) == [100.0] for d in tpot_layers)


def test_bad_rates_show_an_error():
    at = open_app()
    at.text_input(key="whatif.rates_text").set_value("2, fast")
    next(b for b in at.button if b.label == "Run the load sweep").click().run()
    no_exception(at)
    assert any("arrival rates" in e.value for e in at.error)
    assert len(charts(at)) == 5   # no load-curve charts


def test_uploaded_trace_is_replayed_with_its_own_lengths():
    data = (Path(__file__).resolve().parents[1] / "workload" / "fixtures" / "azure_small.csv").read_bytes()
    at = open_app()
    at.selectbox(key="sc:workload.arrival.process").set_value("trace").run()
    at.selectbox(key="sc:workload.prompt_tokens.dist").set_value("trace")
    at.selectbox(key="sc:workload.output_tokens.dist").set_value("trace").run()
    at.number_input(key="sc:workload.requests").set_value(0)
    at.file_uploader(key="sc:workload.arrival.upload").upload("azure_small.csv", data, "text/csv")
    click_run(at)
    no_exception(at)
    assert not at.error
    path = at.text_input(key="sc:workload.arrival.path").value
    assert Path(path).read_bytes() == data
    over = {"workload": {"arrival": {"process": "trace", "path": path}}}
    s = scenario_from_dict(yaml.safe_load(yaml.safe_dump(
        {**yaml.safe_load(load_scenario(None).model_dump_json()), **over})))
    check_headline(at, summarize(simulate(s)))
    assert at.query_params["workload.arrival"].startswith("{")


def test_saved_configuration_loads_back_into_the_form_and_can_be_deleted():
    at = open_app()
    at.text_input(key="whatif.save_name").set_value("base")
    next(b for b in at.button if b.label == "Save").click().run()
    at.number_input(key="sc:deployment.tp").set_value(2)
    click_run(at)
    assert at.number_input(key="sc:deployment.tp").value == 2
    at.button(key="whatif.load.base").click().run()
    no_exception(at)
    assert at.number_input(key="sc:deployment.tp").value == 1
    check_headline(at, expected({}))
    at.button(key="whatif.delete.base").click().run()
    assert "base" not in at.session_state["whatif.saved"]
