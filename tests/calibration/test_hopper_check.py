"""Whole-model Hopper rows extrapolated to full depth and compared with the time model
(calibration/hopper_check.py)."""
from __future__ import annotations

import pandas as pd
import pytest

from calibration.hopper_check import compare, full_depth
from calibration.hopper_models import WM
from simulator.catalog.engines import load_engine
from simulator.errors import InputError


def _rows(model: str, full: int, per_layer: dict[int, tuple[float, float, int]]) -> list[dict]:
    return [{"model": model, "layers": n, "full_layers": full, "phase": "decode", "batch": 8, "seq": 1,
             "context": 1024, "cache": "contiguous", "kernel_s": k, "wall_s": w, "kernels": kn}
            for n, (k, w, kn) in per_layer.items()]


def test_two_depths_extrapolate_linearly_and_full_depth_passes_through():
    # 2 layers: 3 ms of kernels; 6 layers: 7 ms -> 1 ms per layer; 48 layers: 3 + 46 = 49 ms
    df = pd.DataFrame(_rows("qwen3-30b-a3b", 48, {2: (3e-3, 9e-3, 100), 6: (7e-3, 21e-3, 300)})
                      + _rows("llama-3.1-8b", 32, {32: (5e-3, 6e-3, 900)}))
    out = full_depth(df).set_index("model")
    assert out.loc["qwen3-30b-a3b", "kernel_s"] == pytest.approx(49e-3)
    assert out.loc["qwen3-30b-a3b", "wall_s"] == pytest.approx(9e-3 + 46 * 3e-3)
    assert out.loc["qwen3-30b-a3b", "kernels"] == pytest.approx(100 + 46 * 50)
    assert out.loc["qwen3-30b-a3b", "layer_kernel_s"] == pytest.approx(1e-3)
    assert out.loc["llama-3.1-8b", "kernel_s"] == pytest.approx(5e-3)


def test_compare_predicts_each_step_with_the_catalog_model(tmp_path):
    rows = _rows("deepseek-v2-lite", 27, {3: (2e-3, 8e-3, 300), 7: (4e-3, 16e-3, 700)})
    pd.DataFrame(rows, columns=list(WM.columns)).to_csv(tmp_path / "hopper_models.csv", index=False)
    df = compare(tmp_path, "h200-sxm", load_engine("hf-eager"))
    assert len(df) == 1 and df["predicted_kernel_s"].iloc[0] > 0
    assert df["kernel_err"].iloc[0] == pytest.approx(df["predicted_kernel_s"].iloc[0] / 14e-3 - 1)


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="hopper_models.csv"):
        compare(tmp_path, "h200-sxm", load_engine("hf-eager"))
