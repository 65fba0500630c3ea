"""The vLLM and AIPerf JSON layouts: a script written for vLLM's result file reads servesim's."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulator.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
ARGS = ["run", "--set", "workload.requests=80", "--no-progress"]


def vllm_report(result: dict) -> dict:
    """What a dashboard script written for ``vllm bench serve --save-result`` files reads."""
    return {"model": result["model_id"], "rate": result["request_rate"],
            "req_s": result["request_throughput"], "out_tok_s": result["output_throughput"],
            "tok_s": result["total_token_throughput"], "ok": result["completed"], "failed": result["failed"],
            "ttft_ms": (result["mean_ttft_ms"], result["median_ttft_ms"], result["p99_ttft_ms"]),
            "tpot_ms": (result["mean_tpot_ms"], result["std_tpot_ms"], result["p99_tpot_ms"]),
            "itl_ms": (result["median_itl_ms"], result["p99_itl_ms"]),
            "e2el_ms": (result["mean_e2el_ms"], result["p99_e2el_ms"]),
            "mean_ttft_check_ms": 1e3 * float(np.mean(result["ttfts"])),
            "tokens": sum(result["input_lens"]) + sum(result["output_lens"])}


def test_the_reader_works_on_vllms_documented_fixture():
    fix = json.loads((FIXTURES / "vllm_bench_serve.json").read_text())
    rep = vllm_report(fix)
    assert rep["ttft_ms"][0] == pytest.approx(rep["mean_ttft_check_ms"])
    assert rep["tok_s"] == pytest.approx(rep["tokens"] / fix["duration"])


def test_vllm_format_has_vllms_keys_units_and_consistent_values(capsys):
    assert main([*ARGS, "--format", "vllm", "--percentiles", "50,90,95,99,99.9"]) == 0
    out = json.loads(capsys.readouterr().out)
    fix = json.loads((FIXTURES / "vllm_bench_serve.json").read_text())
    # every key vLLM writes, bar the per-token lists and texts a simulator has no content for
    missing = set(fix) - set(out) - {"itls", "generated_texts", "errors", "max_output_tokens_per_s",
                                     "max_concurrent_requests"}
    assert not missing
    for word in ("ttft", "tpot", "itl", "e2el"):
        for stat in ("mean", "median", "std", "p50", "p90", "p95", "p99", "p99.9"):
            assert f"{stat}_{word}_ms" in out
    rep = vllm_report(out)
    # milliseconds, checked against the per-request list in seconds (independent recomputation)
    ttfts = np.array(out["ttfts"])
    assert rep["ttft_ms"][0] == pytest.approx(rep["mean_ttft_check_ms"])
    assert out["median_ttft_ms"] == pytest.approx(1e3 * np.median(ttfts))
    assert out["std_ttft_ms"] == pytest.approx(1e3 * np.std(ttfts))
    assert out["p99.9_ttft_ms"] == pytest.approx(1e3 * np.percentile(ttfts, 99.9))
    assert rep["tok_s"] == pytest.approx(rep["tokens"] / out["duration"])
    assert out["completed"] == len(ttfts) == 80
    assert out["p50_ttft_ms"] <= out["p99_ttft_ms"] <= out["p99.9_ttft_ms"]


def test_aiperf_format_blocks_and_units(capsys, tmp_path):
    assert main([*ARGS, "--format", "aiperf", "--out", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "aiperf.json").read_text()) == out
    servesim = json.loads((tmp_path / "summary.json").read_text())
    ttft = out["time_to_first_token"]
    assert ttft["unit"] == "ms" and ttft["count"] == 80
    assert ttft["avg"] == pytest.approx(servesim["ttft_s"]["mean"] * 1e3)
    assert ttft["min"] <= ttft["p1"] <= ttft["p25"] <= ttft["p50"] <= ttft["p99"] <= ttft["max"]
    # AIPerf's ITL is the per-request TPOT; per-user throughput its reciprocal
    assert out["inter_token_latency"]["avg"] == pytest.approx(servesim["tpot_s"]["mean"] * 1e3)
    per_user = out["output_token_throughput_per_user"]
    assert per_user["unit"] == "tokens/sec/user"
    assert per_user["p50"] == pytest.approx(servesim["output_tokens_per_s_per_user"]["median"])
    assert out["request_throughput"] == {"unit": "requests/sec", "avg": pytest.approx(servesim["throughput_requests_per_s"])}
    assert out["total_token_throughput"]["avg"] == pytest.approx(
        servesim["throughput_input_tokens_per_s"] + servesim["throughput_output_tokens_per_s"])


@pytest.mark.parametrize("bad", ["0,50", "50,100", "x", "50,,90"])
def test_bad_percentiles_exit_2_with_one_line(capsys, bad):
    assert main([*ARGS, "--percentiles", bad]) == 2
    err = capsys.readouterr().err.strip()
    assert "--percentiles" in err and "\n" not in err
