"""The example sweep and plan files run as documented."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from simulator.cli import main
from simulator.planning.sweep import expand, load_sweep

from .conftest import REPO

SWEEPS = sorted((REPO / "examples" / "sweeps").glob("*.yaml"))
PLANS = sorted((REPO / "examples" / "plan").glob("*.yaml"))


def test_examples_exist():
    assert SWEEPS and PLANS


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_example_sweep_runs(path, tmp_path, capsys):
    spec, base = load_sweep(path)
    n = len(expand(spec, base).points)
    assert main(["sweep", str(path), "--out", str(tmp_path), "--workers", "2", "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert res["finished"] == res["points"] == n == len(df) and df["point"].is_unique
    ok = df[df["error"].isna()]
    assert len(ok) and (ok["completed"] + ok["rejected"] == ok["requests"]).all()
    if spec.replications > 1:
        agg = pd.read_parquet(tmp_path / "aggregated.parquet")
        assert len(agg) == n // spec.replications and (agg["replications"] == spec.replications).all()
    if path.name == "gpus-batch.yaml":
        bad = df[df["deployment.gpu"] == "l4"]
        assert len(bad) and (bad["error_kind"] == "does_not_fit").all()


@pytest.mark.parametrize("path", PLANS, ids=lambda p: p.name)
def test_example_plan_and_cost_run(path, capsys):
    code = main(["plan", str(path), "--target-rate", "30", "--gpus", "h100-sxm", "--tp", "1", "--pp", "1",
                 "--batch-sizes", "256", "--batched-tokens", "8192", "--workers", "1", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert code == 0 and res["plans"][0]["replicas"] >= 1
    pytest.importorskip("genai_prices", reason="genai-prices (extra 'prices') is not installed")
    code = main(["cost", str(path), "--api", "gpt-4o-mini", "--api-batch", "--volume", "1B", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert code == 0 and res["api"][0]["batch"]["usd_per_million_tokens"] < res["api"][0]["standard"][
        "usd_per_million_tokens"]
