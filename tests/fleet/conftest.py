"""Helpers for sharded-run tests: single-process and sharded results compared column by column."""
from __future__ import annotations

import numpy as np

from simulator.engine.simulate import SimulationResult


def request_columns(res: SimulationResult) -> dict[str, np.ndarray]:
    """Every per-request column of a result, the per-request ITL percentiles included."""
    cols = {k: v for k, v in vars(res.requests).items() if isinstance(v, np.ndarray)}
    cols["itl_p50"], cols["itl_p99"] = res.request_itl()
    return cols


def assert_identical(a: SimulationResult, b: SimulationResult) -> None:
    ca, cb = request_columns(a), request_columns(b)
    assert ca.keys() == cb.keys()
    for k in ca:
        assert np.array_equal(ca[k], cb[k], equal_nan=ca[k].dtype.kind == "f"), k
    assert a.kv_blocks_peak == b.kv_blocks_peak and a.kv_blocks_in_use_at_end == b.kv_blocks_in_use_at_end
    assert sorted(map(tuple, np.column_stack(list(a.steps.values())).tolist())) == \
        sorted(map(tuple, np.column_stack(list(b.steps.values())).tolist()))


def latency_errors(a: SimulationResult, b: SimulationResult) -> dict[str, float]:
    """Relative error of b against a: mean and p99 of TTFT and end-to-end latency."""
    out = {}
    for name, (ra, rb) in {"ttft": (a.requests.first_token - a.requests.arrival, b.requests.first_token - b.requests.arrival),
                           "e2e": (a.requests.finish - a.requests.arrival, b.requests.finish - b.requests.arrival)}.items():
        out[f"{name}_mean"] = float(np.nanmean(rb) / np.nanmean(ra) - 1)
        out[f"{name}_p99"] = float(np.nanpercentile(rb, 99) / np.nanpercentile(ra, 99) - 1)
    return out
