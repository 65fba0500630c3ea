"""Fit the decode-attention tile model (``simulator.perf.tiles.decode_tile_time``) to measured calls.

Nine numbers per GPU (``simulator.catalog.gpu.DecodeTileModel``): the per-call ramp ``launch_s``;
for the one-pass kernel and for the split-KV kernel each, a fixed time per CTA wave, one CTA's
streaming rate (as a multiple of one SM's share of the datasheet memory bandwidth) and the
fraction of the datasheet bandwidth the whole call reaches; the combine kernel's fixed time and
its time per split. The SM count comes from the run's ``meta.json``. The kernel's geometry is a
*family* (``FAMILIES``), not a fitted number: FlashAttention-2 (two CTAs per SM, its split heuristic
over 2 x SMs slots, 128-key blocks; flash_api.cpp ``num_splits_heuristic``) or one CTA per SM as
FlashAttention-3's decode path runs it (a KV head's whole query group packed into one CTA,
``pack_gqa``; hopper/heuristics.h: slots = SMs, no split at 4 key blocks or fewer), which also
describes TensorRT-LLM's XQA (one CTA per (sequence, KV head) group, multi-block split-KV when the
CTAs do not fill the GPU; TensorRT-LLM docs "XQA optimization", read 2026-12-07). Our own torch
measurements are FlashAttention-2 and keep that family; an engine's tables may take either, the one
with the lower error on the rows it is fitted on (so the hold-out rows never choose it). Least squares
on log(predicted / measured) from a fixed start (deterministic). Predictions, in the fit and in the
held-out report, go through ``simulator.perf.roofline.decode_attention_time``, the function the step
model calls.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from simulator.catalog.gpu import DecodeTileModel, GPUProfile
from simulator.perf.roofline import decode_attention_time

from .fit_tiles import best_family, build_model, family_of, fit_with_holdout, least_squares_model
from .io import as_float

Row = dict[str, str]
#: Fitted fields, their start values and bounds (times in microseconds while fitting).
PARAMS = ("launch_s", "tile_s", "tile_rate", "bandwidth_efficiency", "split_tile_s", "split_rate",
          "split_bandwidth_efficiency", "combine_s", "combine_split_s")
_US = {"launch_s", "tile_s", "split_tile_s", "combine_s", "combine_split_s"}
X0 = (2.0, 3.0, 0.5, 0.6, 3.0, 0.5, 0.9, 2.0, 0.1)
LO = (0.0, 0.0, 0.02, 0.05, 0.0, 0.02, 0.05, 0.0, 0.0)
HI = (20.0, 50.0, 20.0, 1.0, 50.0, 20.0, 1.0, 20.0, 2.0)
#: Kernel geometries (DecodeTileModel fields that are not fitted).
FAMILIES: dict[str, dict[str, int]] = {
    "fa2": {"ctas_per_sm": 2, "split_slots_per_sm": 2, "split_min_blocks": 1},
    "fa3": {"ctas_per_sm": 1, "split_slots_per_sm": 1, "split_min_blocks": 5},
}


def call(r: Row) -> tuple[float, float, float, float]:
    """(FLOPs, bytes, streams = batch × KV heads, keys per sequence) of one measured row."""
    return (as_float(r["flops"]), as_float(r["bytes"]), as_float(r["batch"]) * as_float(r["kv_heads"]),
            as_float(r["kv_len"]))


def model_of(theta: np.ndarray | tuple[float, ...], sms: int, validate: bool = True,
             family: str = "fa2") -> DecodeTileModel:
    """The decode tile model of kernel ``family`` for fitted values ``theta`` (microseconds for the times)."""
    m = build_model(DecodeTileModel, PARAMS, _US, theta, sms, validate)
    upd = FAMILIES[family]
    return m.model_copy(update=upd) if validate else DecodeTileModel.model_construct(**{**dict(m), **upd})


def predict_s(model: DecodeTileModel, gpu: GPUProfile, rows: list[Row]) -> np.ndarray:
    """Seconds of each row's call as the simulator predicts it with ``model`` on ``gpu``."""
    g = gpu.model_copy(update={"efficiency": gpu.efficiency.model_copy(update={"attention_decode_tiles": model})})
    return np.array([decode_attention_time(g, *call(r)[:2], "bf16", *call(r)[2:])[0].seconds for r in rows])


def fit_params(rows: list[Row], meas: np.ndarray, gpu: GPUProfile, sms: int,
               families: tuple[str, ...] = ("fa2",)) -> DecodeTileModel:
    """Least-squares decode tile model for ``rows`` with measured seconds ``meas``: per kernel family,
    and of those the one with the smallest sum of squared log errors on these rows."""
    return best_family(lambda f: least_squares_model(lambda th, v: model_of(th, sms, v, f),
                                                     lambda m, rs: predict_s(m, gpu, rs), rows, meas, X0, LO, HI),
                       lambda m: predict_s(m, gpu, rows), meas, families)


def fit_decode_tiles(rows: list[Row], meas: np.ndarray, gpu: GPUProfile, sms: int, group: Any = None,
                     families: tuple[str, ...] = ("fa2",)) -> tuple[DecodeTileModel, dict[str, Any]]:
    """Decode tile model fitted on all rows, and its held-out (every 4th row) / in-sample error report.
    ``families``: the kernel geometries to choose from (:data:`FAMILIES`)."""
    ideal = np.array([max(call(r)[0] / gpu.peak_flops("bf16"), call(r)[1] / gpu.memory_bandwidth) for r in rows])
    model, rep = fit_with_holdout(lambda rs, ms: fit_params(rs, ms, gpu, sms, families),
                                  lambda m, rs: predict_s(m, gpu, rs), rows, meas, ideal, PARAMS,
                                  label="flash decode tiles (simulator/perf/tiles.py)", group=group)
    rep["family"] = family_of(model, FAMILIES)
    return model, rep
