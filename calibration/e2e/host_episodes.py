"""The host's usual level and its slow episodes, from the per-step profile's plain runs.

The host forward time of a decode step on the H200 machines measured is not one number: within a
run it switches between a usual level and a slow one about 1.6 times longer, in episodes of a few to
tens of steps (``docs/validation/end-to-end.md``, "Dense per-step profiles and the host's slow episodes").
This module splits the steps of the batches the fit counts as host-bound into those two levels,
machine by machine, and gives these figures (a diagnostic that ``profile_fit`` prints; the engine
model keeps one host level):

- each folder's split: the exact two-group split of log(host forward) with the least within-group
  squared error (1-D 2-means); a folder whose two groups' medians differ by under 25% has no slow
  level (all its steps usual);
- ``host_usual_s``: median host forward of the usual steps, all folders pooled;
- ``slow_factor``: median over the folders with a slow level of (median slow / median usual);
- ``slow_share``: wall time of the slow steps over the wall time of all, pooled;
- ``slow_episode_s``: mean wall time of a stretch of consecutive slow steps within one batch's run
  (stretches cut by a run's start or end count as they are: a low estimate).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Two groups whose medians differ by less than this ratio are one level.
MIN_RATIO = 1.25


def split_threshold(host_s: np.ndarray) -> float | None:
    """Host forward time (seconds) above which a step is slow, or None when the steps show one level."""
    h = np.sort(np.asarray(host_s, dtype=float))
    h = h[np.isfinite(h) & (h > 0)]
    n = len(h)
    if n < 4:
        return None
    x = np.log(h)
    c, c2 = np.cumsum(x), np.cumsum(x * x)
    k = np.arange(1, n)                                   # first k values in the low group
    sse = (c2[k - 1] - c[k - 1] ** 2 / k) + ((c2[-1] - c2[k - 1]) - (c[-1] - c[k - 1]) ** 2 / (n - k))
    best = int(k[np.argmin(sse)])
    lo, hi = h[:best], h[best:]
    if np.median(hi) < MIN_RATIO * np.median(lo):
        return None
    return float(np.sqrt(h[best - 1] * h[best]))


def episodes(runs: Sequence[tuple[int, np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The figures from ``runs``: (folder index, host forward s, wall s) of each host-bound batch's
    plain-run decode steps in step order. Returns ``host_usual_s``, ``slow_factor``, ``slow_share``,
    ``slow_episode_s`` (NaN where no folder has a slow level) and ``folders_with_slow_level``."""
    steps = {f: np.concatenate([h for g, h, _ in runs if g == f]) for f in sorted({f for f, _, _ in runs})}
    thr = {f: split_threshold(h) for f, h in steps.items()}
    usual, ratios, stretches = [], [], []
    slow_wall = all_wall = 0.0
    for f, h in steps.items():
        t = thr[f]
        if t is None:
            usual.append(h)
            continue
        usual.append(h[h <= t])
        ratios.append(float(np.median(h[h > t]) / np.median(h[h <= t])))
    for f, h, w in runs:
        t = thr[f]
        all_wall += float(np.sum(w))
        if t is None:
            continue
        slow = h > t
        slow_wall += float(np.sum(w[slow]))
        edges = np.flatnonzero(np.diff(np.concatenate([[0], slow.astype(np.int8), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            stretches.append(float(np.sum(w[a:b])))
    nan = float("nan")
    return {
        "host_usual_s": float(np.median(np.concatenate(usual))) if usual else nan,
        "slow_factor": float(np.median(ratios)) if ratios else nan,
        "slow_share": slow_wall / all_wall if ratios and all_wall > 0 else nan,
        "slow_episode_s": float(np.mean(stretches)) if stretches else nan,
        "folders_with_slow_level": float(len(ratios)),
    }
