"""The engine against queueing theory: M/D/1, M/G/1 (Pollaczek-Khinchine) and M/M/c (Erlang C).

With one request per batch the engine is a single-server queue whose service time is the step
time model's prediction; the waiting times it produces must match the closed-form results.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simulator.engine.simulate import build_step_model, simulate
from simulator.metrics.summary import per_request
from simulator.perf.step import BatchShape

from .conftest import make_scenario


def _waits(res) -> tuple[np.ndarray, np.ndarray]:
    df = per_request(res)
    df = df[df["finished"]]
    service = (df["e2e_s"] - df["queue_s"]).to_numpy()
    return df["queue_s"].to_numpy(), service


def test_md1_waiting_time_matches_closed_form():
    """Poisson arrivals, deterministic service (prefill only), one server: Wq = rho*S / (2(1-rho))."""
    probe = make_scenario(**{"workload.prompt_tokens.value": 512, "workload.output_tokens.value": 1})
    service = build_step_model(probe).price(BatchShape.prefill(1, 512), detail=True).wall_s
    rho = 0.7
    s = make_scenario(**{"workload.prompt_tokens.value": 512, "workload.output_tokens.value": 1,
                         "workload.arrival.rate": rho / service, "workload.requests": 40000,
                         "deployment.batching.max_batch_size": 1, "deployment.batching.max_batched_tokens": 1024})
    wq, svc = _waits(simulate(s))
    assert np.allclose(svc, service, rtol=1e-9)
    expected = rho * service / (2 * (1 - rho))
    assert wq.mean() == pytest.approx(expected, rel=0.05)


def _geometric_lengths(tmp_path, mean: float, n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    path = tmp_path / "lengths.csv"
    pd.DataFrame({"output": rng.geometric(1.0 / mean, size=n)}).to_csv(path, index=False)
    return str(path)


def test_mg1_pollaczek_khinchine(tmp_path):
    """Poisson arrivals, geometric output lengths, one request at a time: Wq = λE[S²] / (2(1-ρ))."""
    path = _geometric_lengths(tmp_path, 40, 5000, 3)
    probe = make_scenario()
    d = build_step_model(probe).price(BatchShape.decode(1, 100), exact=True, detail=True).wall_s
    rate = 0.6 / (40 * d)
    s = make_scenario(**{"workload.arrival.rate": rate, "workload.requests": 30000,
                         "workload.prompt_tokens.value": 16,
                         "workload.output_tokens": {"dist": "empirical", "path": path, "column": "output"},
                         "deployment.batching.max_batch_size": 1})
    res = simulate(s)
    wq, svc = _waits(res)
    lam = len(wq) / res.arrival_end_s
    rho = lam * svc.mean()
    expected = lam * np.mean(svc**2) / (2 * (1 - rho))
    assert 0.5 < rho < 0.7
    assert wq.mean() == pytest.approx(expected, rel=0.07)


def _erlang_c_wait(lam: float, mu: float, c: int) -> float:
    a = lam / mu
    rho = a / c
    tail = a**c / math.factorial(c) / (1 - rho)
    p_wait = tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail)
    return p_wait / (c * mu - lam)


def test_mmc_erlang_c(tmp_path):
    """c replicas fed from one router queue, near-exponential service: Erlang C (Allen-Cunneen for CV² ≠ 1)."""
    c = 3
    path = _geometric_lengths(tmp_path, 60, 5000, 5)
    probe = make_scenario()
    d = build_step_model(probe).price(BatchShape.decode(1, 100), exact=True, detail=True).wall_s
    mu_guess = 1.0 / (60 * d)
    s = make_scenario(**{"workload.arrival.rate": 0.75 * c * mu_guess, "workload.requests": 30000,
                         "workload.prompt_tokens.value": 16,
                         "workload.output_tokens": {"dist": "empirical", "path": path, "column": "output"},
                         "deployment.batching.max_batch_size": 1, "deployment.replicas": c,
                         "deployment.max_outstanding_per_replica": 1})
    res = simulate(s)
    wq, svc = _waits(res)
    lam = len(wq) / res.arrival_end_s
    mu = 1.0 / svc.mean()
    cv2 = svc.var() / svc.mean() ** 2
    expected = _erlang_c_wait(lam, mu, c) * (1 + cv2) / 2
    assert 0.6 < lam / (c * mu) < 0.85
    assert wq.mean() == pytest.approx(expected, rel=0.08)
