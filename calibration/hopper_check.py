"""Compare the Hopper measurements of calibration/hopper_models.py with the time model (no torch).

    python -m calibration.hopper_check calibration/data/h200-hopper [--gpu h200-sxm] [--engine hf-eager]

Whole-model rows (``hopper_models.csv``): a model measured at two layer counts is extrapolated to
its full depth, ``t_full = t(n_lo) + (N - n_lo) * (t(n_hi) - t(n_lo)) / (n_hi - n_lo)``, for the
summed kernel time and the wall time alike; a model measured at full depth is used as it is. Each
step is then predicted as ``servesim estimate`` predicts it (``StepModel`` of the catalog model on
the GPU profile with the engine profile) and the errors are ``predicted / measured - 1``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.catalog.engine import EngineProfile
from simulator.catalog.engines import load_engine
from simulator.catalog.gpus import load_gpu
from simulator.catalog.models import load_model
from simulator.errors import InputError
from simulator.perf.step import BatchShape, StepModel

KEYS = ["model", "phase", "batch", "seq", "context", "cache"]


def full_depth(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per measured step at the model's full depth (kernel_s, wall_s, kernels), with the
    per-layer times used for the extrapolation."""
    out = []
    for key, g in rows.groupby(KEYS, sort=False):
        g = g.sort_values("layers")
        full = int(g["full_layers"].iloc[0])
        lo = g.iloc[0]
        rec = dict(zip(KEYS, key), layers_measured="/".join(str(int(x)) for x in g["layers"]))
        if int(lo["layers"]) == full:
            rec.update(kernel_s=lo["kernel_s"], wall_s=lo["wall_s"], kernels=lo["kernels"],
                       layer_kernel_s=np.nan)
        elif len(g) >= 2:
            hi = g.iloc[-1]
            dn = int(hi["layers"]) - int(lo["layers"])
            add = full - int(lo["layers"])
            rec.update({c: lo[c] + add * (hi[c] - lo[c]) / dn for c in ("kernel_s", "wall_s", "kernels")})
            rec["layer_kernel_s"] = (hi["kernel_s"] - lo["kernel_s"]) / dn
        else:
            continue
        out.append(rec)
    return pd.DataFrame(out)


def predict(model: str, gpu: str, engine: EngineProfile, phase: str, batch: int, seq: int,
            context: int) -> tuple[float, float, int]:
    """(GPU seconds, wall seconds, kernels) of one step, as ``servesim estimate`` computes them."""
    m = load_model(model)
    sm = StepModel(m, load_gpu(gpu), engine)
    shape = (BatchShape.prefill(batch, seq, 0, m.sliding_window) if phase == "prefill"
             else BatchShape.decode(batch, context, m.sliding_window))
    st = sm.price(shape, exact=True, detail=True)
    return st.gpu_s, st.wall_s, st.kernels


def compare(data: Path, gpu: str, engine: EngineProfile) -> pd.DataFrame:
    path = data / "hopper_models.csv"
    if not path.is_file():
        raise InputError("data_dir", str(data), "must hold hopper_models.csv from calibration.hopper_models")
    meas = full_depth(pd.read_csv(path))
    pred = [predict(r.model, gpu, engine, r.phase, int(r.batch), int(r.seq), int(r.context))
            for r in meas.itertuples(index=False)]
    meas["predicted_kernel_s"] = [p[0] for p in pred]
    meas["predicted_wall_s"] = [p[1] for p in pred]
    meas["predicted_kernels"] = [p[2] for p in pred]
    meas["kernel_err"] = meas["predicted_kernel_s"] / meas["kernel_s"] - 1
    meas["wall_err"] = meas["predicted_wall_s"] / meas["wall_s"] - 1
    return meas


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Median absolute error of kernel and wall time per model, phase and cache layout."""
    g = df.groupby(["model", "phase", "cache"])
    return pd.DataFrame({
        "points": g.size(),
        "kernel_median_ape": g["kernel_err"].apply(lambda e: float(np.median(np.abs(e)))),
        "kernel_median_err": g["kernel_err"].median(),
        "wall_median_ape": g["wall_err"].apply(lambda e: float(np.median(np.abs(e)))),
        "wall_median_err": g["wall_err"].median(),
    }).reset_index()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("--gpu", default="h200-sxm")
    ap.add_argument("--engine", default="hf-eager", help="engine profile name or YAML path")
    ap.add_argument("--out", help="CSV of every compared step")
    a = ap.parse_args(argv)
    try:
        df = compare(Path(a.data_dir), a.gpu, load_engine(a.engine))
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if a.out:
        df.to_csv(a.out, index=False)
    pd.set_option("display.width", 220)
    cols = ["model", "phase", "batch", "seq", "context", "cache", "kernel_s", "predicted_kernel_s", "kernel_err",
            "wall_s", "predicted_wall_s", "wall_err", "kernels", "predicted_kernels"]
    print(df[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(summary(df).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
