"""``simulate_sharded``: one scenario's replicas over local shards or Ray actors, one result."""
from __future__ import annotations

import logging
import os
from typing import Any

from ..config.scenario import Scenario
from ..engine.guard import check_memory
from ..engine.simulate import SimulationResult
from ..errors import InputError
from .coordinator import LocalWorker, run_sharded
from .plan import plan_shards


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError("--executor", "ray", "ray is not installed; pip install 'servesim[ray]'") from None
    return ray


def simulate_sharded(s: Scenario, executor: str = "ray", workers: int = 2,
                     window_s: float | None = None) -> SimulationResult:
    """Simulate ``s`` with its replicas split over ``workers`` shards: Ray actors (on the cluster
    ``RAY_ADDRESS`` names, else a local instance of ``workers`` CPUs) or, with ``executor="local"``,
    shards in this process one after another (the same routing and merge, for checks)."""
    plan = plan_shards(s, executor, workers, window_s)
    check_memory(s)
    if executor == "local":
        return run_sharded(s, plan, [LocalWorker(s, reps) for reps in plan.shards], lambda xs: xs)
    ray = _ray()
    started = False
    if not ray.is_initialized():
        extra: dict[str, Any] = {} if os.environ.get("RAY_ADDRESS") else {"num_cpus": len(plan.shards)}
        ray.init(log_to_driver=False, include_dashboard=False, logging_level=logging.WARNING, **extra)
        started = True
    try:
        actor = ray.remote(num_cpus=1)(LocalWorker)
        workers_ = [_RayWorker(actor.remote(s, reps)) for reps in plan.shards]
        return run_sharded(s, plan, workers_, ray.get)  # type: ignore[arg-type]
    finally:
        if started:
            ray.shutdown()


class _RayWorker:
    """A shard behind a Ray actor: calls return object refs."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def step(self, *args: Any) -> Any:
        return self.handle.step.remote(*args)

    def finish(self) -> Any:
        return self.handle.finish.remote()
