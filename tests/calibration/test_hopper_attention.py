"""cuDNN vs FlashAttention-2 pairing of attention rows (calibration/hopper_attention.py)."""
from __future__ import annotations

import pandas as pd
import pytest

from calibration.hopper_attention import speedups, summary
from simulator.calibration.io import SCHEMAS


def _write(path, rows, schema):
    pd.DataFrame(rows, columns=list(SCHEMAS[schema].columns)).to_csv(path, index=False)


def _prefill(backend, s, t, kernel=None):
    return {"op": "prefill", "batch": 1, "q_heads": 32, "kv_heads": 8, "head_dim": 128, "new_tokens": s,
            "prefix": 0, "event_s": t, "kernel_s": kernel, "backend": backend, "gqa": "enable_gqa"}


def test_same_machine_baseline_is_preferred_and_kernel_time_wins(tmp_path):
    hop, suite = tmp_path / "hop", tmp_path / "suite"
    hop.mkdir(), suite.mkdir()
    _write(hop / "attention_prefill.csv", [_prefill("cudnn", 8192, 1.0e-3), _prefill("cudnn", 512, 9e-5, 2e-5)],
           "attention_prefill")
    _write(hop / "flash_attention_prefill.csv", [_prefill("flash", 8192, 1.9e-3), _prefill("flash", 512, 9e-5, 3e-5)],
           "attention_prefill")
    _write(suite / "attention_prefill.csv", [_prefill("flash", 8192, 5e-3)], "attention_prefill")
    m = speedups(hop, suite)["prefill"].set_index("new_tokens")
    assert m.loc[8192, "speedup"] == pytest.approx(1.9)
    assert m.loc[512, "speedup"] == pytest.approx(1.5)          # 3e-5 / 2e-5: profiled kernel times
    s = summary({"prefill": m.reset_index()})
    assert set(s["length"].astype(str)) == {"<=1k", ">=8k"} and (s["baseline"] == "same machine").all()


def test_suite_rows_are_the_fallback_baseline(tmp_path):
    hop, suite = tmp_path / "hop", tmp_path / "suite"
    hop.mkdir(), suite.mkdir()
    _write(hop / "attention_prefill.csv", [_prefill("cudnn", 8192, 1.0e-3)], "attention_prefill")
    _write(suite / "attention_prefill.csv", [_prefill("flash", 8192, 2.0e-3)], "attention_prefill")
    m = speedups(hop, suite)["prefill"]
    assert m["speedup"].iloc[0] == pytest.approx(2.0) and m["baseline"].iloc[0] == "suite data suite"
