"""Screening of disaggregated candidates: a pool shared by several candidates is built once, with the
same outcome as screening each candidate on its own."""
from __future__ import annotations

import numpy as np

from simulator.config import load_scenario
from simulator.planning.candidates import Space
from simulator.planning.layouts import disaggregated_candidates
from simulator.planning.pools import screen_disaggregated
from simulator.planning.prices import load_prices


def _screen(cands, base, book, prompt, output):
    return screen_disaggregated(base, cands, book, target_rate=8.0, attainment=0.99, prompt=prompt, output=output)


def test_shared_pools_screen_as_each_candidate_alone():
    base = load_scenario(None, {"workload.requests": 200})
    space = Space(gpus=("h100-sxm", "a100-sxm-80gb"), tp=(1, 2, 4), weight_dtypes=("bf16",), max_batch_sizes=(64, 256),
                  max_batched_tokens=(8192,))
    cands = disaggregated_candidates(space, [])
    # every prefill pool appears with several decode pools: sharing is exercised
    prefill = [(c.prefill_gpu, c.prefill_tp, c.max_batch_size) for c in cands]
    assert len(set(prefill)) < len(prefill)
    book = load_prices()
    rng = np.random.default_rng(0)
    prompt, output = rng.integers(100, 3000, 300), rng.integers(10, 400, 300)
    together = _screen(cands, base, book, prompt, output)
    alone = [_screen([c], base, book, prompt, output) for c in cands]
    kept = [k for keep, _ in alone for k in keep]
    rejected = [r for _, rej in alone for r in rej]
    assert together[1] == rejected
    assert [(k.candidate, k.bound, k.min_replicas, k.zero_load, k.scenario) for k in together[0]] == \
        [(k.candidate, k.bound, k.min_replicas, k.zero_load, k.scenario) for k in kept]
    assert kept     # something passed, so bounds and idle-replica shares were compared
