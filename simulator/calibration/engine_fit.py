"""Fit the ``hf-eager`` engine profile's host and cache figures from whole-model measurements.

From ``calibration/data/*/whole_model.csv`` and ``whole_model_kernels.csv`` (transformers models
with random weights, eager, sdpa, DynamicCache, profiled on the GPU):

- ``kv_copy_Bps``: bytes moved by DynamicCache's ``torch.cat`` of K and V (read the old cache and the
  new token, write the whole cache, per layer) over the time of the concatenation kernels
  (``CatArrayBatchedCopy``) in profiled decode steps, median over models and GPUs. RoPE's own small
  ``cat`` kernels ride along (under 1% of the bytes).
- ``elementwise_kernel_s``: mean duration of the small element-wise kernels (norm pieces, RoPE,
  activation, casts: every kernel that is not a GEMM, attention or cache concatenation) in the
  profiled decode steps, median over models and GPUs: eager PyTorch's TensorIterator kernels take
  about 2 µs each at decode sizes, twice the shortest kernel of calibration/data/*/launch.csv.
- ``cpu_launch_per_kernel_s`` and ``cpu_overhead_per_step_s``: least squares of wall time against
  kernels launched, wall = fixed + per_kernel × kernels, over steps whose GPU kernel time is under
  40% of the wall time (host-bound steps), with the fixed part kept non-negative.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.catalog.models import load_model
from simulator.paths import calibration_data_dir

from .kv_copy_fit import CopyFit, layout_fit

DATA = calibration_data_dir()


def _cache_bytes(model: str, batch: int, context: int) -> float:
    m = load_model(model)
    per_token_layer = 2 * m.num_kv_heads * m.head_dim * 2.0          # K and V, bf16
    return batch * per_token_layer * (2 * context + 1) * m.num_layers   # read old + new, write all


def kv_copy_rate(data: Path = DATA) -> tuple[float, list[float]]:
    """Median concatenation throughput (bytes/s) and the per-measurement values."""
    rates = []
    for path in sorted(data.glob("*/whole_model_kernels.csv")):
        k = pd.read_csv(path)
        dec = k[(k["phase"] == "decode") & k["kernel"].str.contains("CatArrayBatchedCopy")]
        for (model, batch, context), g in dec.groupby(["model", "batch", "context"]):
            rates.append(_cache_bytes(model, int(batch), int(context)) / float(g["total_s"].sum()))
    return float(np.median(rates)), rates


_NOT_ELEMENTWISE = "nvjet|gemm|splitK|sdpa|flash|Cat|cutlass|fmha|sm90|cudnn"


def elementwise_kernel_time(data: Path = DATA) -> float:
    """Median over profiled decode steps of the mean small element-wise kernel duration (seconds)."""
    means = []
    for path in sorted(data.glob("*/whole_model_kernels.csv")):
        k = pd.read_csv(path)
        d = k[(k["phase"] == "decode") & ~k["kernel"].str.contains(_NOT_ELEMENTWISE, case=False)]
        for _, g in d.groupby(["model", "batch", "context"]):
            means.append(float(g["total_s"].sum() / g["count"].sum()))
    return float(np.median(means))


def host_costs(data: Path = DATA) -> tuple[float, float, float]:
    """(fixed seconds per step, seconds per kernel, median relative error) over host-bound steps."""
    frames = [pd.read_csv(p) for p in sorted(data.glob("*/whole_model.csv"))]
    w = pd.concat(frames)
    w = w[w["kernel_s"] < 0.4 * w["wall_s"]]
    a = np.vstack([np.ones(len(w)), w["kernels"].to_numpy(float)]).T
    y = w["wall_s"].to_numpy(float)
    (fixed, per), *_ = np.linalg.lstsq(a, y, rcond=None)
    if fixed < 0:
        fixed, per = 0.0, float(np.sum(a[:, 1] * y) / np.sum(a[:, 1] ** 2))
    err = float(np.median(np.abs((fixed + per * a[:, 1]) / y - 1)))
    return float(fixed), float(per), err


def contiguous_copy(data: Path = DATA) -> CopyFit | None:
    """Floor-plus-bandwidth fit of DynamicCache's concatenation on contiguous caches, as a generate
    loop sees them (``*/kv_cat.csv`` of calibration/hopper_kernels.py); None without such rows."""
    return layout_fit(data, "contiguous")


def fitted_hf_eager() -> dict[str, Any]:
    """The measured fields of the hf-eager engine profile, rounded for the data file. The cache copy
    comes from contiguous-cache measurements where they exist: the whole-model runs crop the cache
    back after each step, which leaves a strided view that copies about 4x slower."""
    rate, rates = kv_copy_rate()
    copy = contiguous_copy()
    fixed, per, err = host_costs()
    kv = ({"kv_copy_Bps": float(f"{rate:.3g}")} if copy is None else
          {"kv_copy_Bps": float(f"{copy.bandwidth_Bps:.3g}"), "kv_copy_floor_s": float(f"{copy.floor_s:.3g}")})
    return {**kv, "elementwise_kernel_s": float(f"{elementwise_kernel_time():.3g}"), "cpu_launch_per_kernel_s": float(f"{per:.3g}"),
            "cpu_overhead_per_step_s": float(f"{fixed:.3g}"), "_points": len(rates), "_host_fit_median_err": err}


if __name__ == "__main__":
    print(fitted_hf_eager())
