"""The scheduling loops of a replica: a base that sleeps, wakes, waits out timed runs of steps and
logs them (``base.py``), continuous batching (``continuous.py``) and static or dynamic batching
(``static.py``)."""
from __future__ import annotations

from .base import DecodeRun, Scheduler, run_seconds, steps_within
from .continuous import ContinuousScheduler
from .static import StaticScheduler

__all__ = ["ContinuousScheduler", "DecodeRun", "Scheduler", "StaticScheduler", "run_seconds", "steps_within"]
