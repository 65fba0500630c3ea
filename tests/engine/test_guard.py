"""The resource guard refuses runs that would exceed the memory limit, before allocating."""
from __future__ import annotations

import time

import pytest

from simulator.cli import main
from simulator.config.loader import DEFAULT_SCENARIO, scenario_from_dict
from simulator.engine import guard
from simulator.workload.generate import generate_plan


def _err(argv, capsys):
    t = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - t < 20
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    return err


def test_huge_request_counts_are_refused_with_the_estimate(capsys):
    err = _err(["run", "--set", "workload.requests=100000000000"], capsys)
    assert "workload.requests" in err and "would need about" in err and guard.ENV in err
    err = _err(["run", "--set", "workload.requests=1000000000000000000000000000000"], capsys)
    assert "workload.requests: got 1000000000000000000000000000000; must be at most 2^53" in err


def test_huge_replica_counts_are_refused(capsys):
    err = _err(["run", "--set", "deployment.replicas=100000000", "--set", "workload.requests=10"], capsys)
    assert "deployment.replicas" in err
    err = _err(["run", "--set", "deployment.replicas=1000000", "--set", "workload.requests=10"], capsys)
    assert "at most 100,000 replicas" in err


def test_limit_is_configurable(monkeypatch, capsys):
    monkeypatch.setenv(guard.ENV, "300M")
    err = _err(["run", "--set", "workload.requests=100000"], capsys)
    assert "over the limit of 300 MB" in err
    monkeypatch.setenv(guard.ENV, "0")
    assert guard.memory_limit() is None
    monkeypatch.setenv(guard.ENV, "lots")
    assert "SERVESIM_MEMORY_LIMIT" in _err(["run", "--set", "workload.requests=10"], capsys)


def test_estimate_grows_with_requests_and_replicas():
    base = scenario_from_dict(DEFAULT_SCENARIO)
    more = scenario_from_dict(DEFAULT_SCENARIO, {"workload.requests": 4000, "deployment.replicas": 3})
    diff = guard.estimate_bytes(more) - guard.estimate_bytes(base)
    per_request = guard.BYTES_PER_REQUEST + 211 * guard.BYTES_PER_OUTPUT_TOKEN   # the chat lengths' mean
    assert abs(diff - (2000 * per_request + 2 * guard.BYTES_PER_REPLICA)) <= 1


@pytest.mark.parametrize("lengths,mean", [
    ({"dist": "fixed", "value": 32768}, 32768), ({"dist": "uniform", "low": 10, "high": 30}, 20),
    ({"dist": "lognormal", "median": 129, "mean": 211, "max": 4096}, 211),
    ({"dist": "lognormal", "median": 129, "mean": 9000, "max": 4096}, 4096)])
def test_output_tokens_per_request_follow_the_length_distribution(lengths, mean):
    s = scenario_from_dict(DEFAULT_SCENARIO, {"workload.output_tokens": lengths})
    assert guard.mean_output_tokens(s) == pytest.approx(mean)


def test_a_million_chat_requests_pass_a_12_gb_limit(monkeypatch):
    monkeypatch.setenv(guard.ENV, "12G")
    guard.check_memory(scenario_from_dict(DEFAULT_SCENARIO, {"workload.requests": 1_000_000}))


def test_a_million_long_outputs_are_refused_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv(guard.ENV, "12G")
    err = _err(["run", "--set", "workload.requests=1000000", "--set",
                "workload.output_tokens={dist: fixed, value: 32768}"], capsys)
    assert "workload.requests: got 1000000" in err and "32768 output tokens" in err and "over the limit of 12 GB" in err


def test_replications_are_capped(capsys):
    assert "--replications" in _err(["run", "--replications", "1000000000"], capsys)


@pytest.mark.parametrize("turns,dist", [(1, "fixed"), (7, "fixed"), (40, "fixed"), (6, "geometric")])
def test_session_segments_count_what_generation_makes(turns, dist):
    s = scenario_from_dict(DEFAULT_SCENARIO, {"workload.requests": 3000, "workload.sessions.turns": turns,
                                              "workload.sessions.turns_dist": dist,
                                              "workload.prefix.system_prompt_tokens": 100})
    made = len(generate_plan(s.workload, s.seed).segments.ids)
    if dist == "fixed":
        assert guard.session_segments(s) == made
    else:        # expected (2T - 1) + 1 per turn, counted as 2T + 1: within the draw's noise above it
        assert made <= guard.session_segments(s) <= 1.25 * made


def test_long_sessions_are_refused_naming_the_turns(capsys):
    err = _err(["run", "--set", "workload.requests=1000000", "--set", "workload.sessions.turns=100000"], capsys)
    assert "workload.sessions.turns: got 100000" in err and "prompt segment" in err


@pytest.mark.parametrize("over,peak_mb", [
    ({"workload.requests": 1_000_000}, 880),
    ({"workload.requests": 1_000_000, "workload.output_tokens": {"dist": "fixed", "value": 1}}, 677),
    ({"workload.requests": 300, "workload.output_tokens": {"dist": "fixed", "value": 32768}}, 180)])
def test_the_estimate_covers_the_measured_peaks(over, peak_mb):
    # peak resident memory of simulation, summary and per-request table, interpreter included
    # (benchmarks/engine_speed.py, docs/benchmarks/README.md "Peak memory of the summary", 2026-12-07)
    s = scenario_from_dict(DEFAULT_SCENARIO, {"workload.arrival.rate": 16.0, **over})
    assert guard.estimate_bytes(s) >= peak_mb * 2**20
