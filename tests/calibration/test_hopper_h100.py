"""The H100 Hopper run (calibration/data/h100-hopper): the cache-copy fits it gives, where they are
used, and how the time model holds against its whole-model steps (none of these rows is fitted to
anything but the copy figures)."""
from pathlib import Path

import numpy as np
import pytest

from calibration.hopper_check import compare
from calibration.hopper_fa3_check import priced
from calibration.whole_model_check import measured_engine
from simulator.calibration.engine_fit import contiguous_copy, fitted_hf_eager
from simulator.calibration.kv_copy_fit import fit_file
from simulator.catalog.engines import load_engine

DATA = Path(__file__).resolve().parents[2] / "calibration" / "data" / "h100-hopper"
pytestmark = pytest.mark.skipif(not (DATA / "kv_cat.csv").is_file(), reason="needs calibration/data/h100-hopper")


def test_contiguous_copy_is_about_four_times_the_cropped_one():
    fits = fit_file(DATA / "kv_cat.csv")
    assert 2.5e12 < fits["contiguous"].bandwidth_Bps < 3.5e12
    assert 0.55e12 < fits["cropped"].bandwidth_Bps < 0.75e12
    assert fits["contiguous"].held_out["median_ape_pct"] < 5


def test_hf_eager_prices_the_contiguous_copy_and_the_suite_rows_the_cropped_one():
    copy = contiguous_copy()
    fitted = fitted_hf_eager()
    assert fitted["kv_copy_Bps"] == float(f"{copy.bandwidth_Bps:.3g}")
    assert load_engine("hf-eager").kv_copy_Bps == fitted["kv_copy_Bps"]      # calibrate fit --check holds
    assert measured_engine("hf-eager").kv_copy_Bps == pytest.approx(fit_file(DATA / "kv_cat.csv")["cropped"].bandwidth_Bps)
    assert measured_engine("vllm") == load_engine("vllm")                      # no DynamicCache: unchanged


def test_eager_llama_decode_on_a_contiguous_cache_is_priced_within_ten_percent():
    res = compare(DATA, "h100-sxm", load_engine("hf-eager"))
    rows = res[(res["model"] == "llama-3.1-8b") & (res["cache"] == "contiguous")]
    assert len(rows) == 4 and float(np.median(np.abs(rows["kernel_err"]))) < 0.10


def test_fa3_class_decode_prices_hold_against_cudnn_at_long_contexts():
    res = priced(DATA, "h100-sxm", "vllm")
    long = res[(res["phase"] == "decode") & (res["length"] >= 2048)]
    assert len(long) >= 40 and float(np.median(np.abs(long["err"]))) < 0.10
