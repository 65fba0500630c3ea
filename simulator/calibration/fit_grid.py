"""Numerics of the efficiency fit: kernel-smoothed grids, gap filling, monotone projection,
alpha-beta line fits and error statistics (numpy only)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EFF_MIN, EFF_MAX = 0.01, 1.0


def grid_nodes(values: np.ndarray, step: float = 1.0) -> list[float]:
    """Grid nodes every ``step`` from floor(min) to ceil(max) of ``values`` (log2 units)."""
    lo, hi = float(np.floor(values.min())), float(np.ceil(values.max()))
    n = round((hi - lo) / step) + 1
    return [lo + i * step for i in range(max(n, 1))]


def smooth_grid(x: np.ndarray, y: np.ndarray | None, v: np.ndarray, gx: Sequence[float],
                gy: Sequence[float] | None, hx: float = 1.0, hy: float = 1.0) -> np.ndarray:
    """Triangular-kernel weighted mean of ``v`` at each grid node (rows: gy, columns: gx).

    Nodes with no data within the kernel are NaN. A 1-D fit passes ``y=None, gy=None``.
    """
    gxa = np.asarray(gx, dtype=float)
    wx = np.clip(1.0 - np.abs(x[None, :] - gxa[:, None]) / hx, 0.0, None)        # (nx, n)
    if y is None or gy is None:
        w = wx
        s = w.sum(axis=1)
        out = np.where(s > 1e-9, (w * v[None, :]).sum(axis=1) / np.maximum(s, 1e-12), np.nan)
        return out[None, :]
    gya = np.asarray(gy, dtype=float)
    wy = np.clip(1.0 - np.abs(y[None, :] - gya[:, None]) / hy, 0.0, None)        # (ny, n)
    w = wy[:, None, :] * wx[None, :, :]                                         # (ny, nx, n)
    s = w.sum(axis=2)
    return np.where(s > 1e-9, (w * v[None, None, :]).sum(axis=2) / np.maximum(s, 1e-12), np.nan)


def _fill_1d(row: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(row)
    if not ok.any():
        return row
    idx = np.arange(row.size)
    return np.interp(idx, idx[ok], row[ok])          # linear inside, clamped outside


def fill_gaps(g: np.ndarray) -> np.ndarray:
    """Fill NaN nodes: along x within each row, then along y for columns still empty."""
    g = np.array([_fill_1d(r) for r in g])
    return np.array([_fill_1d(c) for c in g.T]).T


def isotonic(v: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Non-decreasing least-squares fit (pool adjacent violators)."""
    w = np.ones_like(v) if w is None else w
    vals: list[float] = []
    wts: list[float] = []
    cnt: list[int] = []
    for vi, wi in zip(v.tolist(), w.tolist()):
        vals.append(vi)
        wts.append(wi)
        cnt.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            wt = wts[-2] + wts[-1]
            vals[-2] = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / wt
            wts[-2] = wt
            cnt[-2] += cnt[-1]
            vals.pop()
            wts.pop()
            cnt.pop()
    return np.repeat(vals, cnt)


def monotone(g: np.ndarray, along_x: bool, along_y: bool, passes: int = 6) -> np.ndarray:
    """Project a grid towards non-decreasing rows (x) and/or columns (y) by alternating PAV."""
    g = g.copy()
    for _ in range(passes if along_x and along_y else 1):
        if along_x:
            g = np.array([isotonic(r) for r in g])
        if along_y:
            g = np.array([isotonic(c) for c in g.T]).T
    return g


def fit_grid(x: np.ndarray, y: np.ndarray | None, eff: np.ndarray, gx: Sequence[float],
             gy: Sequence[float] | None, mono_x: bool, mono_y: bool, *, hx: float = 1.0,
             hy: float = 1.0) -> np.ndarray:
    """Smoothed, filled, monotone-projected and clipped efficiency grid."""
    g = smooth_grid(x, y, eff, gx, gy, hx, hy)
    g = fill_gaps(g)
    g = monotone(g, mono_x, mono_y and y is not None)
    return np.clip(g, EFF_MIN, EFF_MAX)


def holdout_mask(n: int, every: int = 4) -> np.ndarray:
    """True for held-out rows: every ``every``-th row (indices every-1, 2*every-1, ...)."""
    return (np.arange(n) % every) == every - 1


def ape_stats(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    """Median and p90 absolute percentage error (percent) of predicted vs measured times."""
    if pred.size == 0:
        return {"median_ape_pct": float("nan"), "p90_ape_pct": float("nan"), "n": 0}
    ape = np.abs(pred - meas) / meas * 100.0
    return {"median_ape_pct": float(np.median(ape)), "p90_ape_pct": float(np.percentile(ape, 90)),
            "n": int(pred.size)}


def alpha_beta(nbytes: np.ndarray, seconds: np.ndarray, small_bytes: float = 65536.0
               ) -> tuple[float, float]:
    """Fit t = a + N / b: b from the slope over the largest three octaves of N (the bandwidth
    large messages reach), a = median of t - N / b over messages up to ``small_bytes`` (or the
    smallest three). Returns (a seconds, b bytes per second)."""
    order = np.argsort(nbytes)
    n, t = nbytes[order], seconds[order]
    big = n >= n.max() / 8
    if big.sum() >= 2:
        slope = float(np.polyfit(n[big], t[big], 1)[0])
    else:
        slope = float(t[-1] / n[-1])
    if slope <= 0:
        slope = float(t[-1] / n[-1])
    small = n <= small_bytes if (n <= small_bytes).sum() >= 1 else np.arange(n.size) < 3
    a = float(np.median(t[small] - n[small] * slope))
    return max(a, 1e-9), 1.0 / slope
