"""profile_fit --write: a measured engine profile as a YAML file that scenarios take by path."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from calibration.e2e import profile_fit
from simulator.catalog.engines import load_engine
from simulator.config import load_scenario
from simulator.engine.simulate import simulate

H200 = Path(__file__).resolve().parents[2] / "calibration" / "data" / "e2e-h200"


@pytest.mark.skipif(not (H200 / "profile_steps.csv").exists(), reason="no committed per-step profile")
def test_written_profile_carries_the_fitted_figures_and_runs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "my-engine.yaml"
    assert profile_fit.main([str(H200), "--write", str(out)]) == 0
    printed = dict(line.split(": ") for line in capsys.readouterr().out.splitlines() if not line.startswith("#"))
    e = load_engine(str(out))
    assert e.name == "my-engine" and e.status == "calibrated" and "profile_fit" in e.source
    for key in profile_fit.FIGURES:                       # the file holds what the fit printed
        assert getattr(e, key) == pytest.approx(float(printed[key]), rel=1e-9), key
    base = load_engine("hf-paged")
    assert (e.attention, e.cuda_graphs, e.fused_qkv) == (base.attention, base.cuda_graphs, base.fused_qkv)
    s = load_scenario(None, {"deployment.engine": str(out), "deployment.gpu": "h200-sxm", "workload.requests": 20,
                             "workload.arrival.rate": 0.5})
    res = simulate(s)
    assert (res.requests.generated == res.requests.output).all()


def test_write_needs_a_yaml_path(tmp_path: Path, capsys) -> None:
    assert profile_fit.main([str(H200), "--write", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--write" in err and ".yaml" in err
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.skipif(not (H200 / "profile_steps.csv").exists(), reason="no committed per-step profile")
def test_fit_prints_each_batch_as_measured(capsys) -> None:
    """The per-batch lines give the plain-run medians that the fit pools, and which batches it counts
    as host-bound (kernels under half the host forward): batch 1 is, batch 32 (81 ms of kernels) is not."""
    assert profile_fit.main([str(H200)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ": batch " in ln]
    assert len(lines) == 3 and all(ln.startswith(f"#   {H200}: batch ") for ln in lines)
    one, _, big = lines
    assert "batch 1: wall 45.5 ms, host forward 43.9 ms (p10-p90 " in one and one.endswith("kernels 8.7 ms, host-bound yes")
    assert "batch 32:" in big and big.endswith("host-bound no")
    # the spread of the batch-1 host forward, from the CSV directly (plain run, steps decoding the one sequence)
    with open(H200 / "profile_steps.csv", newline="") as f:
        host = [float(r["fwd_host_s"]) * 1e3 for r in csv.DictReader(f) if r["run"] == "plain" and r["batch"] == "1"
                and r["prefill_seqs"] == "0" and r["decode_seqs"] == "1"]
    assert f"(p10-p90 {np.percentile(host, 10):.1f}-{np.percentile(host, 90):.1f})" in one
