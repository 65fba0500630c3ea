"""Host levels from a per-step profile: the two-level split and the slow episodes, on synthetic steps
whose levels and episodes are known."""
from __future__ import annotations

import numpy as np
import pytest

from calibration.e2e.host_episodes import episodes, split_threshold


def test_split_falls_between_two_levels() -> None:
    rng = np.random.default_rng(1)
    fast = 0.030 * np.exp(rng.normal(0, 0.03, 60))
    slow = 0.050 * np.exp(rng.normal(0, 0.03, 30))
    t = split_threshold(np.concatenate([fast, slow]))
    assert t is not None and fast.max() < t < slow.min()


def test_one_level_has_no_split() -> None:
    rng = np.random.default_rng(2)
    assert split_threshold(0.030 * np.exp(rng.normal(0, 0.05, 90))) is None    # spread, but one level
    assert split_threshold(np.array([0.03, 0.05, 0.03])) is None                  # too few steps


def test_episodes_count_wall_time_and_stretches() -> None:
    """Two folders: one with slow stretches of 3 and 1 steps (slow = 2 x usual), one steady. Share and
    episode length are in wall time; the usual level pools both folders' usual steps."""
    h1 = np.array([30, 30, 60, 60, 60, 30, 30, 30, 60, 30], float) * 1e-3
    w1 = h1 + 0.001
    h2 = np.full(8, 0.030)
    f = episodes([(0, h1, w1), (1, h2, h2 + 0.001)])
    assert f["folders_with_slow_level"] == 1
    assert f["host_usual_s"] == pytest.approx(0.030)
    assert f["slow_factor"] == pytest.approx(2.0)
    slow_wall = 4 * 0.061
    assert f["slow_share"] == pytest.approx(slow_wall / (w1.sum() + 8 * 0.031))
    assert f["slow_episode_s"] == pytest.approx((3 * 0.061 + 0.061) / 2)


def test_no_slow_level_anywhere_gives_nan_figures() -> None:
    f = episodes([(0, np.full(10, 0.03), np.full(10, 0.031))])
    assert f["folders_with_slow_level"] == 0 and f["host_usual_s"] == pytest.approx(0.03)
    assert np.isnan(f["slow_factor"]) and np.isnan(f["slow_share"]) and np.isnan(f["slow_episode_s"])
