"""The command line as a user meets it: JSON contracts, output files, one-line errors with exit code 2."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from simulator.cli import main

SMALL = ["--set", "workload.requests=60", "--no-progress"]


def run_json(capsys, *args: str) -> dict:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_run_json_has_the_documented_keys(capsys):
    s = run_json(capsys, "run", *SMALL, "--json")
    for key in ("requests", "duration_s", "throughput_output_tokens_per_s", "throughput_requests_per_s",
                "goodput_requests_per_s", "slo_attainment", "preemptions", "mfu", "mbu"):
        assert key in s
    for key in ("ttft_s", "tpot_s", "itl_s", "e2e_s"):
        assert set(s[key]) == {"mean", "median", "std", "min", "max", "p50", "p90", "p95", "p99", "p99.9"}
        assert s[key]["min"] <= s[key]["median"] == s[key]["p50"] <= s[key]["max"]
        assert s[key]["p50"] <= s[key]["p90"] <= s[key]["p99"]
    assert s["requests"] == 60 and s["completed"] == 60
    assert 0 < s["mfu"] < 1 and 0 < s["mbu"] < 1


def test_set_overrides_change_the_result(capsys):
    a = run_json(capsys, "run", *SMALL, "--json")
    b = run_json(capsys, "run", *SMALL, "--set", "deployment.gpu=h200-sxm", "--json")
    assert b["tpot_s"]["mean"] < a["tpot_s"]["mean"]   # more bandwidth, faster decode


def test_run_writes_tables(tmp_path, capsys):
    assert main(["run", *SMALL, "--out", str(tmp_path)]) == 0
    req = pd.read_parquet(tmp_path / "requests.parquet")
    ts = pd.read_parquet(tmp_path / "timeseries.parquet")
    assert not list(tmp_path.glob("*.csv"))          # CSV only on request
    assert len(req) == 60 and req["finished"].all()
    assert {"ttft_s", "tpot_s", "e2e_s", "queue_s", "replica", "preemptions"} <= set(req.columns)
    assert {"t_s", "running", "waiting", "kv_blocks_used"} <= set(ts.columns)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["requests"] == 60


def test_run_writes_csv_on_request(tmp_path, capsys):
    assert main(["run", *SMALL, "--out", str(tmp_path), "--csv"]) == 0
    for name in ("requests", "timeseries"):
        c, p = pd.read_csv(tmp_path / f"{name}.csv"), pd.read_parquet(tmp_path / f"{name}.parquet")
        assert list(c.columns) == list(p.columns) and len(c) == len(p)
        num = p.select_dtypes("number").columns
        pd.testing.assert_frame_equal(c[num], p[num], check_dtype=False)


def test_scenario_file_round_trip(tmp_path, capsys):
    assert main(["run", *SMALL, "--out", str(tmp_path), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    second = run_json(capsys, "run", str(tmp_path / "scenario.yaml"), "--json", "--no-progress")
    first.pop("simulation_wall_s"), second.pop("simulation_wall_s")
    assert first == second


@pytest.mark.parametrize("args, field", [
    (["run", "--set", "workload.arrival.rate=-1"], "workload.arrival.rate"),
    (["run", "--set", "deployment.tpp=2"], "deployment.tpp"),
    (["run", "--set", "slo.ttft_s=0"], "slo.ttft_s"),
    (["run", "--set", "model=llama-70"], "model"),
    (["run", "--set", "deployment.gpu=h100-sxm", "--set", "model=llama-3.1-405b"], "model"),
    (["run", "/nonexistent.yaml"], "scenario"),
    (["estimate", "--gpu", "h100-sxm", "--op", "gemm", "--m", "0", "--k", "1", "--n", "1"], "m"),
    (["estimate", "--gpu", "a100-sxm-80gb", "--op", "gemm", "--m", "8", "--k", "8", "--n", "8", "--dtype", "fp8"], "dtype"),
    (["estimate", "--gpu", "h100-sxm", "--model", "llama-3.1-8b", "--tp", "3", "--phase", "decode", "--batch", "1",
      "--context", "10"], "tp"),
    (["estimate", "--gpu", "h1000", "--op", "gemm", "--m", "8", "--k", "8", "--n", "8"], "gpu"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, field):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert field in err


def test_invalid_yaml_reports_line(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("model: llama-3.1-8b\ndeployment: [unclosed\n")
    assert main(["run", str(p)]) == 2
    assert "line" in capsys.readouterr().err


def test_estimate_json_contract(capsys):
    gemm = run_json(capsys, "estimate", "--gpu", "h100-sxm", "--op", "gemm", "--m", "4096", "--k", "4096",
                    "--n", "4096", "--json")
    assert gemm["bound"]["gemm"] == "compute" and gemm["seconds"] > 2 * 4096**3 / 989e12
    dec = run_json(capsys, "estimate", "--gpu", "h100-sxm", "--op", "attention-decode", "--batch", "64",
                   "--kv-len", "4096", "--q-heads", "32", "--kv-heads", "8", "--head-dim", "128", "--json")
    assert dec["bound"]["attention_decode"] == "memory"
    ar = run_json(capsys, "estimate", "--gpu", "h100-sxm", "--op", "all-reduce", "--bytes", "1048576",
                  "--gpus", "2", "--json")
    graph = run_json(capsys, "estimate", "--gpu", "h100-sxm", "--op", "all-reduce", "--bytes", "1048576",
                     "--gpus", "2", "--cuda-graph", "--json")
    assert graph["seconds"] <= ar["seconds"]
    step = run_json(capsys, "estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "4",
                    "--phase", "prefill", "--batch", "2", "--seq", "1024", "--json")
    assert step["seconds"] == pytest.approx(sum(step["breakdown"].values()))
    assert "communication" in step["breakdown"] and step["bound"]["mlp"] == "compute"


def test_python_dash_m_and_listing():
    out = subprocess.run([sys.executable, "-m", "simulator", "gpus"], capture_output=True, text=True, check=True)
    assert "h100-sxm" in out.stdout and "mi300x" in out.stdout
    out = subprocess.run([sys.executable, "-m", "simulator", "models", "--json"], capture_output=True, text=True,
                         check=True)
    names = {m["name"] for m in json.loads(out.stdout)}
    assert {"llama-3.1-8b", "deepseek-v3", "qwen3-235b-a22b", "gpt-oss-120b"} <= names


def test_run_with_replications_reports_intervals(capsys):
    s = run_json(capsys, "run", *SMALL, "--replications", "3", "--json")
    c = s["confidence"]
    assert c["replications"] == 3 and c["seeds"] == [0, 1, 2]
    m = c["metrics"]["throughput_output_tokens_per_s"]
    assert m["low"] <= m["mean"] <= m["high"]
    # the interval is around the mean of three seeds, one of which is the run printed above
    assert m["low"] < m["high"]
