"""Fit servesim efficiency curves and collective models to measured calibration CSVs.

efficiency = ideal time / measured kernel time, ideal = max(FLOPs / dense datasheet peak(dtype),
bytes / datasheet memory bandwidth) from the GPU profile. The measured time is the profiler's
kernel time where the row has one (short kernels), else the CUDA-event median. Per op kind the
points are smoothed onto a grid in log2 shape features (triangular kernel 0.75-1.5 octaves wide),
gaps filled, projected to be non-decreasing along the axes where a larger shape should not be
less efficient (attention lengths, decode KV length, memory bytes; not GEMMs, whose largest
shapes run at the power-limited clock), and clipped to [0.01, 1]. Every 4th row is held out: the curve fitted on
the rest predicts the held-out times, and the median / p90 absolute percentage error is reported;
the curve returned is then fitted on all rows. Memory-bound kernels get three curves (copies,
RMSNorm, strided element-wise kernels; see SPECS).

Prefill attention, when the run's meta.json gives the SM count: the FlashAttention-2 tile model of
``simulator/perf/tiles.py`` instead of a curve, fitted by calibration/fit_tiles.py (same hold-out).
Decode attention likewise: FlashAttention-2's decode CTAs streaming the cache, split-KV heuristic
included (``tiles.decode_tile_time``, fitted by calibration/fit_decode.py); transferred profiles
take both tile models. The decode curve is still fitted and written (for profiles without a tile
model) and reported as ``attention_decode_curve``.

Collectives: t = latency + N / bandwidth per collective, group size and mode (eager / graph),
N = bytes each GPU contributes (as ``simulator.perf.comm`` uses it), fitted for least relative error.

Usage: ``python -m simulator.calibration.fit calibration/data/h100-sxm h100-sxm [--json out.json]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator.catalog.gpu import CollectiveFit, Curve, Efficiency, GPUProfile
from simulator.catalog.gpus import load_gpu
from simulator.errors import InputError, ServesimError
from simulator.perf.roofline import evaluate

from .fit_decode import fit_decode_tiles
from .fit_grid import alpha_beta, ape_stats, fit_grid, grid_nodes, holdout_mask
from .fit_tiles import fit_tiles, sms_of
from .io import as_float, read_rows

Row = dict[str, str]


@dataclass(frozen=True)
class CurveSpec:
    """How one op kind's curve is built from one CSV."""

    key: str                                  # curve name in the profile (e.g. gemm_bf16)
    csv: str
    keep: Callable[[Row], bool]
    x: Callable[[Row], float]
    y: Callable[[Row], float] | None
    x_feature: str
    y_feature: str | None
    dtype: str                                # peak-FLOPs dtype
    mono_x: bool                              # non-decreasing along x
    mono_y: bool
    width: float = 1.0                        # smoothing kernel half-width, octaves
    group: Callable[[Row], str] | None = None  # in-sample errors are also reported per group
    nbytes: Callable[[Row], float] | None = None  # bytes the kernels really move, if not the CSV's minimum


#: torch's SiLU x mul: two kernels moving 5/3 of the minimum bytes (the intermediate written and read).
SILU_MUL_BYTES, SILU_MUL_KERNELS = 5.0 / 3.0, 2


def _l2(col: str) -> Callable[[Row], float]:
    return lambda r: math.log2(max(as_float(r[col]), 1.0))


SPECS: tuple[CurveSpec, ...] = (
    CurveSpec("gemm_bf16", "gemm", lambda r: r["dtype"] == "bf16", _l2("m"),
              lambda r: math.log2(as_float(r["k"]) * as_float(r["n"])), "log2_m", "log2_kn", "bf16", False, False,
              1.5),
    CurveSpec("gemm_fp8", "gemm", lambda r: r["dtype"] == "fp8", _l2("m"),
              lambda r: math.log2(as_float(r["k"]) * as_float(r["n"])), "log2_m", "log2_kn", "fp8", False, False,
              1.5),
    CurveSpec("attention_prefill", "attention_prefill", lambda r: True, _l2("new_tokens"), _l2("kv_len"),
              "log2_q", "log2_kv", "bf16", True, True, group=lambda r: f"{r['op']} batch {r['batch']}"),
    CurveSpec("attention_decode", "attention_decode", lambda r: True, _l2("batch"), _l2("kv_len"),
              "log2_batch", "log2_kv", "bf16", False, True, 1.5,
              group=lambda r: f"heads {r['q_heads']}/{r['kv_heads']}"),
    # three families of memory-bound kernels (docs/guide/calibration.md): copies and contiguous element-wise
    # kernels (torch's vectorized path, ~1 us floor); single-kernel norms (a reduction per row, ~4 us
    # floor); element-wise kernels on strided or broadcast operands (torch's generic, non-vectorized
    # path), measured by SiLU x mul on the two halves of one tensor: two kernels, silu reads and
    # writes F elements, the multiply reads 2F and writes F, so 5/3 of the CSV's minimum bytes, read
    # at the bytes per kernel as the step model reads them
    CurveSpec("memory", "memory", lambda r: r["op"] == "copy", _l2("bytes"), None,
              "log2_bytes", None, "bf16", True, False, 0.75),
    # not monotone: RMSNorm's bandwidth falls again above ~32 MB on H100 (2.56 -> 2.04 TB/s)
    CurveSpec("memory_norm", "memory", lambda r: r["op"] == "rmsnorm", _l2("bytes"), None,
              "log2_bytes", None, "bf16", False, False, 0.75),
    CurveSpec("memory_pointwise", "memory", lambda r: r["op"] == "silu_mul",
              lambda r: math.log2(as_float(r["bytes"]) * SILU_MUL_BYTES / SILU_MUL_KERNELS), None,
              "log2_bytes", None, "bf16", True, False, 0.75, nbytes=lambda r: as_float(r["bytes"]) * SILU_MUL_BYTES),
)
COLLECTIVE_NAMES = {"all_reduce": "all-reduce", "all_gather": "all-gather"}
#: Alternative decode feature: log2(batch x KV heads per GPU), the number of independent KV
#: streams; it explains head-count effects that log2(batch) cannot (see docs/guide/calibration.md).
DECODE_BY_KV_STREAMS = dataclasses.replace(
    SPECS[3], x=lambda r: math.log2(max(as_float(r["batch"]) * as_float(r["kv_heads"]), 1.0)),
    x_feature="log2_batch_kv_heads")


def measured_s(r: Row) -> float:
    """Kernel time where profiled, else the event median (seconds)."""
    k = as_float(r.get("kernel_s", ""))
    return k if k > 0 else as_float(r["event_s"])


def ideal_s(r: Row, gpu: GPUProfile, dtype: str) -> float:
    """Roofline time from the profile's dense datasheet peak and memory bandwidth (seconds)."""
    return max(as_float(r["flops"]) / gpu.peak_flops(dtype), as_float(r["bytes"]) / gpu.memory_bandwidth)


def _arrays(rows: list[Row], spec: CurveSpec, gpu: GPUProfile) -> dict[str, np.ndarray]:
    x = np.array([spec.x(r) for r in rows])
    y = np.array([spec.y(r) for r in rows]) if spec.y else None
    ideal = np.array([spec.nbytes(r) / gpu.memory_bandwidth if spec.nbytes else ideal_s(r, gpu, spec.dtype)
                      for r in rows])
    meas = np.array([measured_s(r) for r in rows])
    return {"x": x, "y": y, "ideal": ideal, "meas": meas, "eff": ideal / meas}


def _curve(a: dict[str, np.ndarray], sel: np.ndarray, spec: CurveSpec, gx: list[float],
           gy: list[float] | None) -> Curve:
    y = a["y"][sel] if a["y"] is not None else None
    g = fit_grid(a["x"][sel], y, a["eff"][sel], gx, gy, spec.mono_x, spec.mono_y, hx=spec.width, hy=spec.width)
    return Curve(x_feature=spec.x_feature, x=gx, y_feature=spec.y_feature, y=list(gy or []),
                 values=[[round(float(v), 4) for v in row] for row in g])


def predict_s(curve: Curve, a: dict[str, np.ndarray], sel: np.ndarray) -> np.ndarray:
    """Predicted seconds = ideal / curve efficiency, evaluated as the simulator evaluates it."""
    ys = a["y"] if a["y"] is not None else [None] * len(a["x"])
    eff = np.array([evaluate(curve, float(xv), None if yv is None else float(yv))
                    for xv, yv in zip(a["x"][sel], np.asarray(ys, dtype=object)[sel])])
    return a["ideal"][sel] / np.clip(eff, 1e-3, 1.0)


def fit_curve(rows: list[Row], spec: CurveSpec, gpu: GPUProfile) -> tuple[Curve, dict[str, Any]]:
    """The kind's curve (fitted on all rows) and its held-out / in-sample error report."""
    a = _arrays(rows, spec, gpu)
    gx = grid_nodes(a["x"])
    gy = grid_nodes(a["y"]) if a["y"] is not None else None
    test = holdout_mask(len(rows))
    train_curve = _curve(a, ~test, spec, gx, gy)
    full = np.ones(len(rows), dtype=bool)
    curve = _curve(a, full, spec, gx, gy)
    report = {"points": len(rows), "held_out": ape_stats(predict_s(train_curve, a, test), a["meas"][test]),
              "in_sample": ape_stats(predict_s(curve, a, full), a["meas"]),
              "efficiency_range": [round(float(a["eff"].min()), 3), round(float(a["eff"].max()), 3)]}
    if spec.group is not None:
        pred = predict_s(curve, a, full)
        labels = np.array([spec.group(r) for r in rows])
        report["in_sample_by_group"] = {g: ape_stats(pred[labels == g], a["meas"][labels == g])
                                        for g in dict.fromkeys(labels.tolist())}
    return curve, report


def fit_collectives(rows: list[Row]) -> tuple[dict[str, dict[str, dict[int, CollectiveFit]]], dict[str, Any]]:
    """Alpha-beta fits per mode -> collective -> group size, and their error report."""
    fits: dict[str, dict[str, dict[int, CollectiveFit]]] = {"eager": {}, "graph": {}}
    report: dict[str, Any] = {}
    groups: dict[tuple[str, str, int], list[Row]] = {}
    for r in rows:
        groups.setdefault((r["mode"], r["collective"], int(r["gpus"])), []).append(r)
    for (mode, coll, gpus), rs in sorted(groups.items()):
        rs.sort(key=lambda r: int(r["bytes"]))
        n = np.array([as_float(r["bytes"]) for r in rs])
        t = np.array([as_float(r["seconds"]) for r in rs])
        test = holdout_mask(len(rs))
        a_tr, b_tr = alpha_beta(n[~test], t[~test])
        a, b = alpha_beta(n, t)
        name = COLLECTIVE_NAMES.get(coll, coll)
        fits[mode].setdefault(name, {})[gpus] = CollectiveFit(latency_s=a, bandwidth_Bps=b)
        report[f"{name}/{gpus}/{mode}"] = {
            "latency_us": round(a * 1e6, 2), "bandwidth_GBps": round(b / 1e9, 1),
            "held_out": ape_stats(a_tr + n[test] / b_tr, t[test]),
            "in_sample": ape_stats(a + n / b, t)}
    return fits, report


def fit_launch(rows: list[Row]) -> dict[str, float]:
    """Eager and graph per-kernel overhead and the shortest kernel (seconds)."""
    by = {r["mode"]: r for r in rows}
    out: dict[str, float] = {}
    if "eager" in by:
        out["launch_overhead_s"] = as_float(by["eager"]["event_s"])
    if "graph" in by:
        out["graph_launch_overhead_s"] = as_float(by["graph"]["event_s"])
    k = [as_float(r["kernel_s"]) for r in rows if as_float(r["kernel_s"]) > 0]
    if k:
        out["min_kernel_s"] = min(k)
    return out


def fit(data_dir: str | Path, profile_yaml: str | Path | GPUProfile, decode_feature: str = "batch",
        decode_families: tuple[str, ...] = ("fa2",), prefill_families: tuple[str, ...] = ("fa2",)
        ) -> dict[str, Any]:
    """Fit every kind present in ``data_dir`` against the profile (name, YAML path or loaded profile).

    ``decode_feature``: 'batch' (x = log2 batch, as the simulator reads it now) or
    'batch_kv_heads' (x = log2(batch x KV heads per GPU)). ``decode_families``: the decode kernel
    geometries the decode tile model may take (calibration/fit_decode.py ``FAMILIES``), ``prefill_families``
    those of the prefill tile model (calibration/fit_tiles.py ``FAMILIES``).

    Returns ``{"gpu", "efficiency": <fields of simulator.catalog.gpu.Efficiency, plain types>,
    "report": {kind: errors}}``.
    """
    data = Path(data_dir)
    if not data.is_dir():
        raise InputError("data_dir", str(data_dir), "must be a folder of calibration CSVs")
    if decode_feature not in ("batch", "batch_kv_heads"):
        raise InputError("decode_feature", decode_feature, "allowed: batch, batch_kv_heads")
    specs = SPECS if decode_feature == "batch" else tuple(
        DECODE_BY_KV_STREAMS if s.key == "attention_decode" else s for s in SPECS)
    gpu = profile_yaml if isinstance(profile_yaml, GPUProfile) else load_gpu(str(profile_yaml))
    meta_path = data / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    curves: dict[str, Curve] = {}
    report: dict[str, Any] = {}
    cache: dict[str, list[Row]] = {}
    tiles = decode_tiles = None
    for spec in specs:
        path = data / f"{spec.csv}.csv"
        if not path.exists():
            continue
        rows = cache.setdefault(spec.csv, read_rows(path))
        sel = [r for r in rows if spec.keep(r) and measured_s(r) > 0]
        if len(sel) < 8:
            continue
        if spec.key == "attention_prefill" and sms_of(meta):    # FlashAttention tiles over the SMs
            tiles, report[spec.key] = fit_tiles(sel, np.array([measured_s(r) for r in sel]), gpu,
                                                sms_of(meta) or 0, spec.group, prefill_families)
            continue
        curves[spec.key], report[spec.key] = fit_curve(sel, spec, gpu)
        if spec.key == "attention_decode" and sms_of(meta):     # FlashAttention decode CTAs over the SMs
            report["attention_decode_curve"] = report[spec.key]
            decode_tiles, report[spec.key] = fit_decode_tiles(sel, np.array([measured_s(r) for r in sel]), gpu,
                                                              sms_of(meta) or 0, spec.group, decode_families)
    eff: dict[str, Any] = {"status": "calibrated", "curves": {k: c.model_dump() for k, c in curves.items()}}
    if tiles is not None:
        eff["attention_prefill_tiles"] = tiles.model_dump()
    if decode_tiles is not None:
        eff["attention_decode_tiles"] = decode_tiles.model_dump()
    eff["source"] = (f"calibration/data/{data.name} measured {meta.get('started_utc', '?')} on "
                     f"{meta.get('device', {}).get('name', '?')} (torch {meta.get('versions', {}).get('torch', '?')}); "
                     "fitted by calibration/fit.py against the profile's datasheet peaks")
    if (data / "launch.csv").exists():
        launch = fit_launch(read_rows(data / "launch.csv"))
        eff.update(launch)
        report["launch"] = {k: round(v * 1e6, 3) for k, v in launch.items()}
    if (data / "collectives.csv").exists():
        cfits, report["collectives"] = fit_collectives(read_rows(data / "collectives.csv"))
        eff["collectives"] = {c: {g: f.model_dump() for g, f in d.items()} for c, d in cfits["eager"].items()}
        eff["collectives_graph"] = {c: {g: f.model_dump() for g, f in d.items()} for c, d in cfits["graph"].items()}
    Efficiency.model_validate(eff)     # the block must load as a profile's efficiency section
    return {"gpu": gpu.name, "efficiency": eff, "report": report}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simulator.calibration.fit", description=__doc__.splitlines()[0])
    p.add_argument("data_dir")
    p.add_argument("profile", help="GPU profile name or YAML path (datasheet peaks)")
    p.add_argument("--json", help="write the full result here")
    p.add_argument("--decode-feature", choices=("batch", "batch_kv_heads"), default="batch")
    args = p.parse_args(argv)
    try:
        res = fit(args.data_dir, args.profile, args.decode_feature)
    except ServesimError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for kind, rep in res["report"].items():
        if kind == "collectives":
            for k, v in rep.items():
                print(f"{k:28s} latency {v['latency_us']:8.2f} us  bw {v['bandwidth_GBps']:7.1f} GB/s  "
                      f"held-out median {v['held_out']['median_ape_pct']:.1f}% p90 {v['held_out']['p90_ape_pct']:.1f}%")
        elif "held_out" in rep:
            h = rep["held_out"]
            print(f"{kind:20s} {rep['points']:5d} pts  held-out median {h['median_ape_pct']:.1f}% "
                  f"p90 {h['p90_ape_pct']:.1f}%  eff {rep['efficiency_range']}")
        else:
            print(f"{kind:20s} {rep}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
