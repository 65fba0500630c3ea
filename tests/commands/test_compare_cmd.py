"""``servesim compare``: tool result files read by their documented keys, the workload rebuilt, errors computed."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.commands.compare_cmd import scenario_overrides
from simulator.metrics.measured import read_measured

FIX = Path(__file__).parent / "fixtures"


def test_vllm_file_is_read_in_seconds_with_its_load():
    m = read_measured(str(FIX / "vllm_bench_serve.json"))
    assert (m.tool, m.model, m.requests, m.rate, m.concurrency) == ("vllm", "meta-llama/Llama-3.1-8B-Instruct", 200, 4.0, None)
    assert (m.prompt_tokens, m.output_tokens) == (1024, 128)
    assert m.metrics[("ttft_s", "p99")] == pytest.approx(0.0982)
    assert m.metrics[("e2e_s", "mean")] == pytest.approx(1.2905)
    assert scenario_overrides(m, None)["workload.arrival"] == {"process": "poisson", "rate": 4.0}


def test_sglang_jsonl_last_run_is_read():
    m = read_measured(str(FIX / "sglang_bench_serving.jsonl"))
    assert (m.tool, m.rate, m.concurrency, m.requests) == ("sglang", None, 16, 160)
    assert m.metrics[("e2e_s", "p99")] == pytest.approx(3.3019)
    assert scenario_overrides(m, None)["workload.arrival"] == {"process": "closed_loop", "concurrency": 16}


def test_aiperf_blocks_and_input_config():
    m = read_measured(str(FIX / "profile_export_aiperf.json"))
    assert (m.tool, m.model, m.concurrency, m.requests, m.prompt_tokens) == ("aiperf", "Qwen/Qwen3-8B", 8, 120, 2000)
    assert m.metrics[("tpot_s", "median")] == pytest.approx(0.012)      # AIPerf's ITL is the per-request TPOT
    assert m.metrics[("throughput_requests_per_s", None)] == 2.52


def test_gamma_burstiness_becomes_its_cv():
    m = read_measured(str(FIX / "vllm_bench_serve.json"))
    from dataclasses import replace

    assert scenario_overrides(replace(m, burstiness=4.0), None)["workload.arrival"] == {
        "process": "gamma", "rate": 4.0, "cv": 0.5}


@pytest.mark.parametrize("name", ["vllm_bench_serve.json", "sglang_bench_serving.jsonl", "profile_export_aiperf.json"])
def test_compare_prints_measured_predicted_and_error(name, capsys, monkeypatch):
    assert main(["compare", str(FIX / name), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    m = read_measured(str(FIX / name))
    assert len(out["rows"]) == len(m.metrics)
    for r in out["rows"]:
        assert r["predicted"] > 0
        assert r["error"] == pytest.approx((r["predicted"] - r["measured"]) / r["measured"])
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["compare", str(FIX / name)]) == 0
    assert "ttft_s.mean" in capsys.readouterr().out


def test_a_servesim_run_compared_with_itself_has_no_error(tmp_path, capsys):
    """A run written in vLLM's layout, compared without a scenario: the rebuilt workload is the same
    (closed loop, fixed lengths, every request measured), so predicted equals measured."""
    args = ["run", "--no-progress", "--concurrency", "4", "--format", "vllm", "--set", "workload.requests=40",
            "--set", "workload.warmup_requests=0", "--set", "workload.prompt_tokens={dist: fixed, value: 700}",
            "--set", "workload.output_tokens={dist: fixed, value: 90}"]
    assert main(args) == 0
    f = tmp_path / "vllm.json"
    f.write_text(capsys.readouterr().out)
    assert main(["compare", str(f), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows and all(abs(r["error"]) < 1e-6 for r in rows)


def test_plot_without_its_packages_is_a_clear_error(capsys):
    if importlib.util.find_spec("vl_convert") and importlib.util.find_spec("altair"):
        pytest.skip("altair and vl-convert-python are installed")
    assert main(["compare", str(FIX / "vllm_bench_serve.json"), "--plot", "x.png"]) == 2
    assert "vl-convert-python" in capsys.readouterr().err


def test_plot_is_written_when_the_packages_are_there(tmp_path, capsys):
    if not (importlib.util.find_spec("vl_convert") and importlib.util.find_spec("altair")):
        pytest.skip("needs altair and vl-convert-python (optional)")
    out = tmp_path / "c.png"
    assert main(["compare", str(FIX / "profile_export_aiperf.json"), "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_file_is_one_line_error(tmp_path, capsys):
    f = tmp_path / "x.json"
    f.write_text('{"foo": 1}')
    assert main(["compare", str(f)]) == 2
    err = capsys.readouterr().err
    assert "MEASURED" in err and "Traceback" not in err


PER_REQUEST = ["vllm_bench_serve_detailed.json", "sglang_bench_serving_details.jsonl", "aiperf_run/profile_export.jsonl"]


@pytest.mark.parametrize("name", PER_REQUEST)
def test_compare_reads_each_per_request_file(name, capsys, monkeypatch):
    """Exact percentiles (p90 included) come from the requests; the table prints every row."""
    assert main(["compare", str(FIX / name), "--json", "--model", "llama-3.1-8b"]) == 0
    out = json.loads(capsys.readouterr().out)
    m = read_measured(str(FIX / name))
    assert out["per_request"] is True
    assert {r["metric"] for r in out["rows"]} >= {"ttft_s.p90", "itl_s.p99", "e2e_s.median"}
    for r in out["rows"]:
        assert r["measured"] == pytest.approx(m.metrics[tuple(r["metric"].split(".")) if "." in r["metric"]
                                                        else (r["metric"], None)])
        assert r["predicted"] > 0 and r["error"] == pytest.approx((r["predicted"] - r["measured"]) / r["measured"])
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["compare", str(FIX / name), "--model", "llama-3.1-8b"]) == 0
    text = capsys.readouterr().out
    assert "ttft_s.p90" in text and f"exact percentiles of {m.requests} requests" in text


@pytest.mark.parametrize("name", PER_REQUEST)
def test_compare_writes_a_chart_of_each_per_request_file(name, tmp_path, capsys):
    if not (importlib.util.find_spec("vl_convert") and importlib.util.find_spec("altair")):
        pytest.skip("needs altair and vl-convert-python (optional)")
    out = tmp_path / "c.png"
    assert main(["compare", str(FIX / name), "--model", "llama-3.1-8b", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in capsys.readouterr().out
