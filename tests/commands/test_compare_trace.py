"""The measured workload of a per-request file: the simulation gets the measured requests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.commands.compare_cmd import scenario_overrides
from simulator.commands.compare_trace import arrival_times, trace_overrides
from simulator.config.loader import load_scenario
from simulator.metrics.measured import read_measured
from simulator.workload.generate import generate

FIX = Path(__file__).parent / "fixtures"


def _table(m, tmp_path):
    s = load_scenario(None, {**scenario_overrides(m, "llama-3.1-8b"), **trace_overrides(m, tmp_path)})
    return generate(s.workload, s.seed)


def test_aiperf_requests_are_replayed_at_their_measured_times(tmp_path):
    m = read_measured(str(FIX / "aiperf_run" / "profile_export.jsonl"))
    t = _table(m, tmp_path)
    assert t.arrival_s == pytest.approx(m.samples.start, abs=1e-6)
    assert list(t.prompt_tokens) == list(m.samples.prompt) and list(t.output_tokens) == list(m.samples.output)


def test_vllm_rate_gives_the_measured_lengths_in_order_at_the_rate(tmp_path):
    m = read_measured(str(FIX / "vllm_bench_serve_detailed.json"))
    t = _table(m, tmp_path)
    assert list(t.prompt_tokens) == list(m.samples.prompt) and list(t.output_tokens) == list(m.samples.output)
    assert t.arrival_s[0] == 0 and np.all(np.diff(t.arrival_s) >= 0)


def test_drawn_gaps_have_the_tools_mean_and_shape():
    """Gamma gaps of shape b and mean 1/rate: mean and CV (1/sqrt(b)) over many draws."""
    from dataclasses import replace

    m = read_measured(str(FIX / "vllm_bench_serve_detailed.json"))
    n = 200_000
    big = replace(m, rate=5.0, burstiness=4.0, samples=replace(m.samples, prompt=np.ones(n, dtype=np.int64)))
    gaps = np.diff(arrival_times(big))
    assert gaps.mean() == pytest.approx(0.2, rel=0.01)
    assert gaps.std() / gaps.mean() == pytest.approx(0.5, rel=0.02)


def test_closed_loop_draws_from_the_measured_lengths(tmp_path):
    m = read_measured(str(FIX / "sglang_bench_serving_details.jsonl"))
    ov = trace_overrides(m, tmp_path)
    assert ov["workload.arrival"] == {"process": "closed_loop", "concurrency": 4}
    t = _table(m, tmp_path)
    assert len(t.prompt_tokens) == m.requests
    assert set(t.prompt_tokens) <= set(m.samples.prompt) and set(t.output_tokens) <= set(m.samples.output)
