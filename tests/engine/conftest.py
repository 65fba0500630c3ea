"""Shared helpers for engine tests: scenarios built from dicts, runs summarised."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import strategies as st

from simulator.config import scenario_from_dict
from simulator.native import NATIVE_ENV
from simulator.engine.simulate import SimulationResult, simulate


def uniform_workload(rate: float, requests: int, prompt_high: int, output_high: int, *,
                     rate_low: float = 0.5, requests_low: int = 1) -> dict[str, Any]:
    """Hypothesis strategies for a random Poisson workload with uniform prompt and output lengths,
    as dotted scenario keys."""
    def lengths(low: int, high: int):
        return st.fixed_dictionaries({"dist": st.just("uniform"), "low": st.integers(1, low),
                                      "high": st.integers(low, high)})
    return {"workload.arrival.rate": st.floats(rate_low, rate), "workload.requests": st.integers(requests_low, requests),
            "workload.prompt_tokens": lengths(64, prompt_high), "workload.output_tokens": lengths(8, output_high)}


def batching_and_kv() -> dict[str, Any]:
    """Hypothesis strategies for random batch limits, token budgets, KV block sizes and counts and the
    preemption mode, as dotted scenario keys."""
    return {"deployment.batching.max_batch_size": st.integers(1, 64),
            "deployment.batching.max_batched_tokens": st.integers(64, 4096),
            "deployment.batching.chunked_prefill": st.booleans(),
            "deployment.kv_cache.block_size": st.sampled_from([1, 8, 16, 32]),
            "deployment.kv_cache.num_blocks": st.integers(20, 3000),
            "deployment.kv_cache.preemption": st.sampled_from(["recompute", "swap"])}


def make_scenario(**over: Any):
    """A small Llama-3.1-8B / H100 scenario with dotted-key overrides."""
    base = {
        "model": "llama-3.1-8b",
        "deployment": {"gpu": "h100-sxm"},
        "workload": {"arrival": {"process": "poisson", "rate": 5.0}, "requests": 200,
                     "prompt_tokens": {"dist": "fixed", "value": 256},
                     "output_tokens": {"dist": "fixed", "value": 32}},
        "seed": 1,
    }
    return scenario_from_dict(base, over)


@pytest.fixture
def run():
    def _run(**over: Any) -> SimulationResult:
        return simulate(make_scenario(**over))
    return _run


@contextmanager
def reference_decode_set() -> Iterator[None]:
    """Within it the engine runs the pure-Python decode set (which tests can patch), compiled or not."""
    old = os.environ.get(NATIVE_ENV)
    os.environ[NATIVE_ENV] = "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ[NATIVE_ENV]
        else:
            os.environ[NATIVE_ENV] = old
