"""Fit the prefill-attention tile model (``simulator/perf/tiles.py``) to measured FlashAttention calls.

Eight numbers per GPU (``simulator.catalog.gpu.TileModel``): kernel ramp ``launch_s``, per-CTA
fixed time ``tile_s``, one CTA's MMA rate ``tile_efficiency`` (fraction of one SM's share of the
datasheet bf16 peak), the slowdown of two CTAs sharing an SM ``pair_slowdown``, the same three for
the split-KV kernel plus its combine kernel, and the ragged-tail factor ``tail``. The SM count comes
from the run's ``meta.json``; the split heuristic is FlashAttention-2's (hdim 128 on sm90). The
kernel's tile geometry is a *family* (``FAMILIES``), not a fitted number: FlashAttention-2's 128 x 64
tiles, two CTAs per SM (our torch measurements, which keep it), or FlashAttention-3's Hopper tiles for
head dim 128, one CTA per SM (two consumer warpgroups of 64 rows each and a producer): 128 x 128
keys for causal or local masks (hopper/tile_size.h ``tile_size_fwd_sm90``, read 2026-12-07; 128 x
176 without a mask, which the databases' causal rows do not show). An engine's tables take the
family with the lower error on the rows the model is fitted on. Least squares on
log(predicted / measured) from a fixed start (deterministic). Predictions, in the fit and in the
held-out report, go through ``simulator.perf.roofline.prefill_attention_time``, the function the
step model calls.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel
from scipy.optimize import least_squares

from simulator.catalog.gpu import GPUProfile, TileModel
from simulator.perf.roofline import prefill_attention_time
from simulator.perf.tiles import AttentionCall

from .fit_grid import ape_stats, holdout_mask
from .io import as_float

Row = dict[str, str]
M = TypeVar("M", bound=BaseModel)
#: Fitted fields, their start values and bounds (times in microseconds while fitting).
PARAMS = ("launch_s", "tile_s", "tile_efficiency", "pair_slowdown", "split_tile_s", "split_efficiency",
          "combine_s", "tail")
_US = {"launch_s", "tile_s", "split_tile_s", "combine_s"}
X0 = (2.0, 5.0, 0.3, 1.5, 5.0, 0.3, 1.0, 0.6)
LO = (0.0, 0.0, 0.01, 1.0, 0.0, 0.01, 0.0, 0.0)
HI = (20.0, 50.0, 1.0, 4.0, 50.0, 1.0, 20.0, 2.0)
#: Tile geometries (TileModel fields that are not fitted).
FAMILIES: dict[str, dict[str, int]] = {
    "fa2": {"block_m": 128, "block_n": 64, "ctas_per_sm": 2},
    "fa3": {"block_m": 128, "block_n": 128, "ctas_per_sm": 1},
}


def call(r: Row) -> tuple[float, float, float, float, float, float, int, int]:
    """(FLOPs, bytes, sequences, new tokens, keys, pairs, heads, head dim) of one measured row, summed
    over its batch as the step model passes them."""
    b = as_float(r["batch"])
    return (as_float(r["flops"]), as_float(r["bytes"]), b, b * as_float(r["new_tokens"]), b * as_float(r["kv_len"]),
            b * as_float(r["causal_pairs"]), int(as_float(r["q_heads"])), int(as_float(r["head_dim"])))


def build_model(cls: type[M], params: tuple[str, ...], us: set[str], theta: np.ndarray | tuple[float, ...],
                sms: int, validate: bool = True) -> M:
    """Kernel model ``cls`` for fitted values ``theta`` of ``params`` (microseconds for those in ``us``),
    rounded to 5 significant digits; ``validate=False`` skips pydantic's checks inside the optimiser loop."""
    kw = {k: float(v) * (1e-6 if k in us else 1.0) for k, v in zip(params, theta)}
    if not validate:
        return cls.model_construct(sms=sms, **kw)
    return cls(sms=sms, **{k: float(f"{v:.5g}") for k, v in kw.items()})


def model_of(theta: np.ndarray | tuple[float, ...], sms: int, validate: bool = True,
             family: str = "fa2") -> TileModel:
    """The tile model of geometry ``family`` for fitted values ``theta`` (microseconds for the times)."""
    m = build_model(TileModel, PARAMS, _US, theta, sms, validate)
    upd = FAMILIES[family]
    return m.model_copy(update=upd) if validate else TileModel.model_construct(**{**dict(m), **upd})


def predict_s(model: TileModel, gpu: GPUProfile, rows: list[Row]) -> np.ndarray:
    """Seconds of each row's call as the simulator predicts it with ``model`` on ``gpu``."""
    g = gpu.model_copy(update={"efficiency": gpu.efficiency.model_copy(update={"attention_prefill_tiles": model})})
    out = []
    for r in rows:
        fl, by, seqs, q, kv, pairs, heads, d = call(r)
        out.append(prefill_attention_time(g, fl, by, "bf16", AttentionCall(seqs, heads, q, kv, pairs, d, d))[0].seconds)
    return np.array(out)


def fit_params(rows: list[Row], meas: np.ndarray, gpu: GPUProfile, sms: int,
               families: tuple[str, ...] = ("fa2",)) -> TileModel:
    """Least-squares tile model for ``rows`` with measured seconds ``meas``: per geometry in
    ``families``, and of those the one with the smallest sum of squared log errors on these rows."""
    return best_family(lambda f: least_squares_model(lambda th, v: model_of(th, sms, v, f),
                                                     lambda m, rs: predict_s(m, gpu, rs), rows, meas, X0, LO, HI),
                       lambda m: predict_s(m, gpu, rows), meas, families)


def best_family(fit_one: Callable[[str], Any], predict: Callable[[Any], np.ndarray], meas: np.ndarray,
                families: tuple[str, ...]) -> Any:
    """The model ``fit_one(family)`` of the family whose predictions have the smallest sum of squared
    log errors against ``meas`` (the rows it was fitted on)."""
    models = [fit_one(f) for f in families]
    scores = [float(np.sum(np.log(predict(m) / meas) ** 2)) for m in models]
    return models[int(np.argmin(scores))]


def family_of(model: Any, families: dict[str, dict[str, int]]) -> str:
    """The name of the geometry ``model`` has."""
    return next(f for f, v in families.items() if all(getattr(model, k) == x for k, x in v.items()))


def fit_tiles(rows: list[Row], meas: np.ndarray, gpu: GPUProfile, sms: int, group: Any = None,
              families: tuple[str, ...] = ("fa2",)) -> tuple[TileModel, dict[str, Any]]:
    """Tile model fitted on all rows, and its held-out (every 4th row) / in-sample error report.
    ``families``: the tile geometries to choose from (:data:`FAMILIES`)."""
    ideal = np.array([call(r)[0] for r in rows]) / gpu.peak_flops("bf16")
    model, rep = fit_with_holdout(lambda rs, ms: fit_params(rs, ms, gpu, sms, families),
                                  lambda m, rs: predict_s(m, gpu, rs), rows, meas, ideal, PARAMS,
                                  label="flash tiles (simulator/perf/tiles.py)", group=group)
    rep["family"] = family_of(model, FAMILIES)
    return model, rep


def least_squares_model(build: Callable[[np.ndarray, bool], Any], predict: Callable[[Any, list[Row]], np.ndarray],
                        rows: list[Row], meas: np.ndarray, x0: tuple[float, ...], lo: tuple[float, ...],
                        hi: tuple[float, ...]) -> Any:
    """Kernel model ``build(theta, validate)`` minimising log(predicted / measured) over ``rows``, from
    the fixed start ``x0`` within bounds (deterministic)."""
    def resid(theta: np.ndarray) -> np.ndarray:
        return np.log(predict(build(theta, False), rows) / meas)
    sol = least_squares(resid, np.array(x0), bounds=(np.array(lo), np.array(hi)), x_scale="jac")
    return build(sol.x, True)


def fit_with_holdout(fit: Callable[[list[Row], np.ndarray], Any], predict: Callable[[Any, list[Row]], np.ndarray],
                     rows: list[Row], meas: np.ndarray, ideal: np.ndarray, params: tuple[str, ...], *, label: str,
                     group: Any = None) -> tuple[Any, dict[str, Any]]:
    """A kernel model fitted on all rows, and its error report: held-out (fitted without every 4th row,
    predicting those), in-sample, by group, roofline efficiency range and the fitted values."""
    test = holdout_mask(len(rows))
    train = [r for r, t in zip(rows, test) if not t]
    held = [r for r, t in zip(rows, test) if t]
    m_train = fit(train, meas[~test])
    model = fit(rows, meas)
    pred = predict(model, rows)
    report: dict[str, Any] = {
        "points": len(rows), "model": label,
        "held_out": ape_stats(predict(m_train, held), meas[test]),
        "in_sample": ape_stats(pred, meas),
        "efficiency_range": [round(float((ideal / meas).min()), 3), round(float((ideal / meas).max()), 3)],
        "params": {k: getattr(model, k) for k in params},
        "params_train": {k: getattr(m_train, k) for k in params}}
    if group is not None:
        labels = np.array([group(r) for r in rows])
        report["in_sample_by_group"] = {g: ape_stats(pred[labels == g], meas[labels == g])
                                        for g in dict.fromkeys(labels.tolist())}
    return model, report


def sms_of(meta: dict[str, Any]) -> int | None:
    """Streaming multiprocessors of the measured device, from the run's meta.json (None on CPU runs)."""
    n = meta.get("device", {}).get("multiprocessors")
    return int(n) if isinstance(n, (int, float)) and not math.isnan(n) and n > 0 else None
