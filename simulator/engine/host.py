"""The host's level over time: steady, or switching between its usual speed and slow episodes.

An engine profile with ``host`` (:class:`~simulator.catalog.engine.HostEpisodes`) says that the host
time of a step (eager launches and CPU overhead) is at times ``slow_factor`` times its usual level, for
episodes of ``slow_episode_s`` seconds on average, ``slow_share`` of the time: a two-state Markov
process with exponential stays, started from its stationary distribution. It is drawn lazily, at the
(non-decreasing) times the schedulers ask, so it adds no events to the simulation.
"""
from __future__ import annotations

import math

import numpy as np

from ..catalog.engine import HostEpisodes


class HostLevel:
    """The host level of one replica: ``at(t)`` gives the factor on its host time at ``t`` seconds
    (1 when usual), and ``until`` when that level ends (infinity for a steady host)."""

    def __init__(self, episodes: HostEpisodes | None, rng: np.random.Generator | None = None) -> None:
        self.factor = 1.0
        self.until = math.inf
        self.slow = False
        self.episodes = episodes
        if episodes is None:
            return
        self.rng = rng if rng is not None else np.random.default_rng(0)
        e = episodes
        self.stay_s = (e.slow_episode_s * (1.0 - e.slow_share) / e.slow_share, e.slow_episode_s)  # fast, slow
        self.slow = bool(self.rng.random() < e.slow_share)
        self.factor = e.slow_factor if self.slow else 1.0
        self.until = float(self.rng.exponential(self.stay_s[self.slow]))

    def at(self, t: float) -> float:
        """The factor on host time at ``t`` seconds (times must not decrease between calls)."""
        if t < self.until:
            return self.factor
        while t >= self.until:
            self.slow = not self.slow
            self.until += float(self.rng.exponential(self.stay_s[self.slow]))
        assert self.episodes is not None
        self.factor = self.episodes.slow_factor if self.slow else 1.0
        return self.factor
