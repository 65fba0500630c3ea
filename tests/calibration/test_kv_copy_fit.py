"""Floor-plus-bandwidth fit of cache concatenation times (simulator/calibration/kv_copy_fit.py)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from calibration.hopper_kernels import KV_CAT, KVCAT_BATCH, KVCAT_CONTEXT, kvcat_bytes
from simulator.calibration.kv_copy_fit import fit_file, floor_bandwidth
from simulator.errors import InputError

DATA = Path(__file__).resolve().parents[2] / "calibration" / "data"


def test_kvcat_bytes_read_the_cache_and_token_and_write_the_grown_cache():
    # batch 2, 8 heads, 128 dims, 100 cached tokens: read 101 tokens, write 101 tokens, 2 bytes each
    assert kvcat_bytes(2, 8, 128, 100) == 2 * 8 * 128 * 2 * 101 * 2


def test_exact_floor_and_bandwidth_are_recovered():
    n = np.array([kvcat_bytes(b, 8, 128, c) for b in KVCAT_BATCH for c in KVCAT_CONTEXT], dtype=float)
    floor, bw = floor_bandwidth(n, 4e-6 + n / 2.7e12)
    assert floor == pytest.approx(4e-6, rel=1e-9) and bw == pytest.approx(2.7e12, rel=1e-9)


def test_noise_is_fitted_for_relative_error_and_held_out(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "kv_cat.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(KV_CAT.columns)
        for layout, floor, bw in (("contiguous", 3e-6, 2.8e12), ("cropped", 5e-6, 0.65e12)):
            for b in KVCAT_BATCH:
                for c in KVCAT_CONTEXT:
                    nb = kvcat_bytes(b, 8, 128, c)
                    t = (floor + nb / bw) * (1 + rng.normal(0, 0.02))
                    row = {"op": "cat", "layout": layout, "dtype": "bf16", "batch": b, "kv_heads": 8,
                           "head_dim": 128, "context": c, "bytes": nb, "event_s": t * 1.1, "kernel_s": t}
                    w.writerow([row.get(col, "") for col in KV_CAT.columns])
    fits = fit_file(path)
    assert fits["contiguous"].bandwidth_Bps == pytest.approx(2.8e12, rel=0.05)
    assert fits["contiguous"].floor_s == pytest.approx(3e-6, rel=0.15)
    assert fits["cropped"].bandwidth_Bps == pytest.approx(0.65e12, rel=0.05)
    assert fits["contiguous"].held_out["n"] == 12 and fits["contiguous"].held_out["median_ape_pct"] < 5


def test_bad_input_names_the_field(tmp_path):
    with pytest.raises(InputError, match="kv_cat.csv"):
        fit_file(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="kv_cat rows"):
        floor_bandwidth(np.array([1.0, 1.0]), np.array([1.0, 2.0]))
