"""The routers' reference implementation: every choice scans every candidate replica (O(replicas)).

:class:`~.router.Router` makes the same choices from indexes kept up to date as replicas change
(O(log replicas) per arrival); the tests compare the two choice by choice, ties included."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, get_args

import numpy as np

from ..config.scenario import RouterPolicy
from ..errors import InputError

if TYPE_CHECKING:
    from .replica import Replica

POLICIES: tuple[str, ...] = get_args(RouterPolicy)


class ReferenceRouter:
    """Chooses a replica for each request; deterministic given the seed."""

    def __init__(self, policy: str, replicas: Sequence["Replica"], seed: int = 0) -> None:
        if policy not in POLICIES:
            raise InputError("deployment.router", policy, f"allowed: {', '.join(POLICIES)}")
        self.policy = policy
        self.replicas = list(replicas)
        self._next = 0
        self._rng = np.random.default_rng([seed, 0x5EED])

    def choose(self, rid: int, candidates: Sequence["Replica"] | None = None) -> "Replica":
        """The replica request ``rid`` goes to (among ``candidates`` if given)."""
        reps = self.replicas if candidates is None else list(candidates)
        if len(reps) == 1:
            return reps[0]
        if self.policy == "round_robin":
            r = reps[self._next % len(reps)]
            self._next += 1
            return r
        if self.policy == "random":
            return reps[int(self._rng.integers(len(reps)))]
        if self.policy == "least_outstanding":
            return min(reps, key=lambda r: (r.outstanding, r.index))
        if self.policy == "prefix_aware":  # most cached leading blocks, then least outstanding
            return min(reps, key=lambda r: (-r.cached_prefix(rid), r.outstanding, r.index))
        return min(reps, key=lambda r: (r.pool.used / r.pool.capacity, r.outstanding, r.index))
