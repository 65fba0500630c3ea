"""calibration/peer_check.py: how a measured row becomes the package's inputs, and the side-by-side
medians, on small tables written here; the package's own estimate only where aiconfigurator-core is
installed."""
from __future__ import annotations

import importlib.util
import math

import pandas as pd
import pytest

from calibration import peer_check as pc


def _sample_row(**kw: object) -> pd.Series:
    base = {"id": "r", "backend": "trtllm", "backend_version": "1.0.0rc3", "system": "h100_sxm",
            "model_path": "meta-llama/Llama-3.1-8B-Instruct", "tp_size": 2, "pp_size": 1, "attention_dp_size": 0,
            "moe_tp_size": float("nan"), "moe_ep_size": 0, "gemm_quant_mode": "fp8", "moe_quant_mode": float("nan"),
            "batch_size": 16, "isl": 1024, "osl": 128}
    return pd.Series({**base, **kw})


def test_a_row_becomes_the_packages_inputs() -> None:
    p = pc.inputs_of(_sample_row())
    assert (p.engine, p.version, p.system, p.tp, p.pp, p.batch, p.isl, p.osl) == \
        ("trtllm", "1.0.0rc3", "h100_sxm", 2, 1, 16, 1024, 128)
    assert p.attention_dp == 1                     # 0 in the sample: not set
    assert p.moe_tp is None and p.moe_ep is None   # empty and 0: left to the package
    assert p.gemm == "fp8" and p.moe is None
    assert p.model_path == "meta-llama/Meta-Llama-3.1-8B"   # the shipped config of the same architecture
    assert pc.inputs_of(_sample_row(model_path="Qwen/Qwen3-32B")).model_path == "Qwen/Qwen3-32B"


def _cases() -> pd.DataFrame:
    # servesim's errors: TTFT +10%, -30%, +50%; TPOT +5%, -10%, +20% (engines a, a, b)
    return pd.DataFrame({
        "id": ["x", "y", "z", "failed"], "engine": ["a", "a", "b", "b"], "concurrency": [4, 4, 8, 8],
        "osl": [101, 101, 11, 11], "tp": [1, 1, 2, 2], "ttft_ms": [100.0, 100.0, 50.0, 50.0],
        "tpot_ms": [10.0, 10.0, 5.0, 5.0], "ttft_err": [0.1, -0.3, 0.5, 0.0], "tpot_err": [0.05, -0.1, 0.2, 0.0],
        "thr_err": [-0.04, 0.1, -0.2, 0.0], "error": [float("nan"), float("nan"), float("nan"), "KV cache full"]})


def test_side_by_side_medians_on_the_measurements_both_predict() -> None:
    cases = _cases()
    cases["thr_meas"] = [pc.throughput_per_gpu(c, o, t, a, b) for c, o, t, a, b in
                         zip(cases.concurrency, cases.osl, cases.tp, cases.ttft_ms, cases.tpot_ms)]
    peer = pd.DataFrame({"id": ["x", "y", "z", "failed"], "peer_ttft_ms": [80.0, 150.0, 50.0, 1.0],
                         "peer_tpot_ms": [11.0, 10.0, 4.0, 1.0], "peer_version": "v",
                         "status": ["ok", "ok", "ok", "ok"]})
    peer.loc[len(peer)] = ["w", math.nan, math.nan, "", "LookupError: no database"]
    m = pc.joined(cases, peer)
    assert list(m["id"]) == ["x", "y", "z"]        # servesim's failure and the package's are both left out
    assert m["peer_ttft_err"].tolist() == pytest.approx([-0.2, 0.5, 0.0])
    assert m["peer_tpot_err"].tolist() == pytest.approx([0.1, 0.0, -0.2])
    # throughput by Little's law over one request: x measured 4*101/(0.1+100*0.01) s, predicted 4*101/(0.08+1.1)
    assert m["peer_thr_err"].iloc[0] == pytest.approx((0.1 + 1.0) / (0.08 + 1.1) - 1)
    s = pc.side_by_side(m).set_index("engine")
    assert s.loc["a", "rows"] == 2 and s.loc["all", "rows"] == 3
    assert s.loc["a", "ttft_servesim"] == pytest.approx(0.2)     # median of 0.1 and 0.3
    assert s.loc["a", "ttft_peer"] == pytest.approx(0.35)        # median of 0.2 and 0.5
    assert s.loc["all", "tpot_servesim"] == pytest.approx(0.1)   # median of 0.05, 0.1, 0.2
    assert s.loc["all", "tpot_peer"] == pytest.approx(0.1)       # median of 0.1, 0.0, 0.2


def test_missing_cases_file_is_a_clear_error(tmp_path, capsys) -> None:
    assert pc.main(["--cases", str(tmp_path / "none.csv"), "--csv", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert "none.csv" in err and err.count("\n") == 1


def test_a_file_that_is_not_a_cases_table_or_shares_no_row_is_a_clear_error(tmp_path, capsys) -> None:
    other = tmp_path / "other.csv"
    pd.DataFrame({"id": ["x"], "engine": ["vllm"]}).to_csv(other, index=False)
    sample = tmp_path / "sample.csv"
    pd.DataFrame([_sample_row(id="y")]).to_csv(sample, index=False)
    assert pc.main(["--cases", str(other), "--csv", str(sample)]) == 2
    err = capsys.readouterr().err
    assert "lacks" in err and "tpot_ms" in err and err.count("\n") == 1
    cases = tmp_path / "cases.csv"
    _cases().assign(thr_meas=1.0).to_csv(cases, index=False)     # ids x, y, z, failed; the sample has none of them
    pd.DataFrame([_sample_row(id="nowhere")]).to_csv(sample, index=False)
    assert pc.main(["--cases", str(cases), "--csv", str(sample)]) == 2
    err = capsys.readouterr().err
    assert "no row" in err and err.count("\n") == 1


@pytest.mark.skipif(importlib.util.find_spec("aiconfigurator_core") is not None,
                    reason="aiconfigurator-core is installed: the refusal needs it absent")
def test_without_the_package_the_comparison_is_refused(tmp_path, capsys) -> None:
    cases, sample = tmp_path / "cases.csv", tmp_path / "sample.csv"
    _cases().assign(thr_meas=1.0).to_csv(cases, index=False)
    pd.DataFrame([_sample_row(id="x")]).to_csv(sample, index=False)
    assert pc.main(["--cases", str(cases), "--csv", str(sample)]) == 2
    err = capsys.readouterr().err
    assert "aiconfigurator-core is not installed" in err and err.count("\n") == 1


@pytest.mark.skipif(importlib.util.find_spec("aiconfigurator_core") is None,
                    reason="aiconfigurator-core is not installed (pip install 'servesim[kerneldb]')")
def test_the_packages_estimate_for_one_row() -> None:
    out = pc.predict(pc.inputs_of(_sample_row(tp_size=1, batch_size=8)))
    assert out.status == "ok", out.status
    assert 0 < out.peer_tpot_ms < out.peer_ttft_ms < 10_000   # an 8B model: ms-scale steps, a longer first token
    bad = pc.predict(pc.inputs_of(_sample_row(system="no_such_gpu")))
    assert bad.status != "ok" and math.isnan(bad.peer_ttft_ms)
