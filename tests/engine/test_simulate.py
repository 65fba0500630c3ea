"""What a run leaves behind: from COLLECT_FROM requests on, no garbage cycles for the summary to wait on."""
from __future__ import annotations

import gc

import pytest

from simulator.engine import simulate as simulate_mod

from .conftest import make_scenario


def _left_over(collect_from: int, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(simulate_mod, "COLLECT_FROM", collect_from)
    gc.collect()
    gc.disable()
    try:
        simulate_mod.simulate(make_scenario(**{"workload.requests": 300}))
        return gc.collect()
    finally:
        gc.enable()


def test_a_large_run_collects_its_cycles_before_returning(monkeypatch: pytest.MonkeyPatch):
    kept = _left_over(10**9, monkeypatch)     # below the threshold: the step model's memo is left to gc
    assert kept > 300
    assert _left_over(1, monkeypatch) < kept / 20
