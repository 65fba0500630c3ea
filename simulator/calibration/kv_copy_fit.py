"""Fit DynamicCache's concatenation cost as a floor plus a bandwidth: seconds = floor + bytes / Bps.

    python -m simulator.calibration.kv_copy_fit calibration/data/h100-hopper/kv_cat.csv

Input: ``kv_cat.csv`` from calibration/hopper_kernels.py (one ``torch.cat`` of a ``[batch, kv_heads,
context, head_dim]`` bf16 cache with one new token; ``bytes`` = the cache and the token read, the
grown cache written). The measured time per call is the profiler's kernel time where the row has
one, else the CUDA-event median. The fit minimises the relative error (weighted least squares of
``floor + bytes * (1 / Bps)`` against the times, weights 1 / time). Every 4th row (in the CSV's
order) is held out: the fit on the rest predicts them; then the reported fit uses every row.
One fit per cache layout (``contiguous``: as a generate loop sees the cache; ``cropped``: a view
left by ``DynamicCache.crop``).
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from simulator.errors import InputError

from .fit_grid import ape_stats, holdout_mask
from .io import as_float, read_rows


@dataclass(frozen=True)
class CopyFit:
    """seconds = floor_s + bytes / bandwidth_Bps, with its errors (percent)."""

    layout: str
    floor_s: float
    bandwidth_Bps: float
    points: int
    held_out: dict[str, float]
    in_sample: dict[str, float]

    def seconds(self, nbytes: np.ndarray | float) -> np.ndarray | float:
        return self.floor_s + np.asarray(nbytes, dtype=float) / self.bandwidth_Bps


def floor_bandwidth(nbytes: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    """(floor seconds, bytes per second) of least relative error; the floor is kept >= 0."""
    if nbytes.size < 2 or np.ptp(nbytes) <= 0:
        raise InputError("kv_cat rows", int(nbytes.size), "need at least two different byte counts")
    w = 1.0 / seconds
    a = np.vstack([w, nbytes * w]).T
    (floor, inv_bw), *_ = np.linalg.lstsq(a, np.ones_like(seconds), rcond=None)
    if floor < 0:                      # no floor: slope only, same objective
        floor, inv_bw = 0.0, float(np.sum(nbytes * w) / np.sum((nbytes * w) ** 2))
    if inv_bw <= 0:
        raise InputError("kv_cat rows", "times", "must grow with bytes for a bandwidth to be fitted")
    return float(floor), float(1.0 / inv_bw)


def measured_s(row: dict[str, str]) -> float:
    k = as_float(row.get("kernel_s", ""))
    return k if k > 0 else as_float(row["event_s"])


def fit_layout(rows: list[dict[str, str]], layout: str) -> CopyFit:
    """The floor-plus-bandwidth fit of one layout's rows, with hold-out and in-sample errors."""
    sel = [r for r in rows if r["layout"] == layout and measured_s(r) > 0]
    if len(sel) < 8:
        raise InputError("layout", layout, f"needs at least 8 measured rows, found {len(sel)}")
    n = np.array([as_float(r["bytes"]) for r in sel])
    t = np.array([measured_s(r) for r in sel])
    test = holdout_mask(len(sel))
    f_tr, b_tr = floor_bandwidth(n[~test], t[~test])
    floor, bw = floor_bandwidth(n, t)
    return CopyFit(layout, floor, bw, len(sel), ape_stats(f_tr + n[test] / b_tr, t[test]),
                   ape_stats(floor + n / bw, t))


def fit_file(path: str | Path) -> dict[str, CopyFit]:
    """Fits of every layout present in a kv_cat.csv."""
    p = Path(path)
    if not p.is_file():
        raise InputError("kv_cat.csv", str(path), "must be a kv_cat.csv written by calibration.hopper_kernels")
    rows = read_rows(p)
    return {lay: fit_layout(rows, lay) for lay in dict.fromkeys(r["layout"] for r in rows)}


def layout_fit(data: Path, layout: str) -> CopyFit | None:
    """The fit of ``layout`` over the rows of every ``*/kv_cat.csv`` below ``data``; None without any."""
    rows = [r for p in sorted(data.glob("*/kv_cat.csv")) for r in read_rows(p)]
    return fit_layout(rows, layout) if any(r["layout"] == layout for r in rows) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    a = ap.parse_args(argv)
    fits = fit_file(a.csv)
    print(json.dumps({k: {**asdict(f), "floor_us": round(f.floor_s * 1e6, 3),
                          "bandwidth_GBps": round(f.bandwidth_Bps / 1e9, 1)} for k, f in fits.items()},
                     indent=1, default=lambda x: None if isinstance(x, float) and math.isnan(x) else x))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
