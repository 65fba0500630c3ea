"""Whole-model validation: measured Hugging Face forward steps vs ``servesim estimate``.

    python -m calibration.whole_model_check [--engine hf-eager] [--out docs/validation/whole_model.csv]

For every row of ``calibration/data/<gpu>/whole_model.csv`` (random-weight transformers models
built from catalog configs, run on the GPU with the torch profiler), predict the same step with
the time model and compare: summed CUDA kernel time vs predicted GPU time, wall time vs predicted
wall time, and kernel counts. Runs on any machine (no torch needed): it only reads CSVs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.calibration.kv_copy_fit import layout_fit
from simulator.catalog.engine import EngineProfile
from simulator.catalog.engines import load_engine
from simulator.errors import ServesimError
from simulator.perf.estimate import estimate_step

DATA = Path(__file__).resolve().parent / "data"


def measured_engine(engine: str) -> EngineProfile:
    """The engine as the whole-model runs ran it. Their hf-eager steps cropped the DynamicCache back
    after every step, which leaves a strided view: its concatenation is priced with the strided-copy
    fit of ``*/kv_cat.csv`` (layout ``cropped``), not the profile's contiguous one (a generate loop's)."""
    e = load_engine(engine)
    fit = layout_fit(DATA, "cropped") if e.kv_cache == "dynamic" else None
    if fit is None:
        return e
    return e.model_copy(update={"kv_copy_Bps": fit.bandwidth_Bps, "kv_copy_floor_s": fit.floor_s})


def compare(gpu: str, engine: str = "hf-eager") -> pd.DataFrame:
    """One row per measured step with predicted and measured times and their errors."""
    path = DATA / gpu / "whole_model.csv"
    profile = measured_engine(engine)
    meas = pd.read_csv(path)
    rows = []
    for r in meas.itertuples(index=False):
        kw = {"batch": int(r.batch)}
        if r.phase == "prefill":
            kw["seq"] = int(r.seq)
        else:
            kw["context"] = int(r.context)
        try:
            est = estimate_step(r.model, gpu, r.phase, engine=profile, **kw)
        except ServesimError as err:  # e.g. a model the GPU cannot hold
            print(f"skip {r.model} {r.phase}: {err}", file=sys.stderr)
            continue
        rows.append({"gpu": gpu, "model": r.model, "phase": r.phase, "batch": r.batch,
                     "seq_or_context": r.seq if r.phase == "prefill" else r.context,
                     "measured_kernel_s": r.kernel_s, "predicted_kernel_s": est["seconds"],
                     "measured_wall_s": r.wall_s, "predicted_wall_s": est["wall_seconds"],
                     "measured_kernels": r.kernels, "predicted_kernels": est["kernels"]})
    df = pd.DataFrame(rows)
    df["kernel_err"] = df["predicted_kernel_s"] / df["measured_kernel_s"] - 1
    df["wall_err"] = df["predicted_wall_s"] / df["measured_wall_s"] - 1
    return df


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Median and p90 absolute percentage error per GPU and phase."""
    g = df.groupby(["gpu", "phase"])
    return pd.DataFrame({
        "points": g.size(),
        "kernel_median_ape": g["kernel_err"].apply(lambda e: float(np.median(np.abs(e)))),
        "kernel_p90_ape": g["kernel_err"].apply(lambda e: float(np.percentile(np.abs(e), 90))),
        "wall_median_ape": g["wall_err"].apply(lambda e: float(np.median(np.abs(e)))),
        "wall_p90_ape": g["wall_err"].apply(lambda e: float(np.percentile(np.abs(e), 90))),
    }).reset_index()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", default="hf-eager")
    ap.add_argument("--gpus", default="h100-sxm,h200-sxm")
    ap.add_argument("--out", help="CSV of every compared point")
    a = ap.parse_args(argv)
    df = pd.concat([compare(g, a.engine) for g in a.gpus.split(",") if (DATA / g / "whole_model.csv").exists()])
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(a.out, index=False)
    pd.set_option("display.width", 200)
    print(summary(df).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
