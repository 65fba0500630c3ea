"""Batch waiting (``deployment.batching.prefill_wait``, TensorRT-LLM's batch_wait_timeout_iters and
batch_wait_max_tokens_ratio): new prompts wait while decodes run, up to a step count or a token share."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.config.loader import scenario_from_dict
from simulator.engine.simulate import simulate
from simulator.errors import InputError

from .conftest import make_scenario
from .schedulers.test_batch_forming import _step_starts


def _waited(wait: dict | None, prompt: int = 256, first: bool = False, **over) -> np.ndarray:
    """Step starts each request saw between its arrival and its first scheduled step, for requests that
    arrived while another one decoded (fused: no scheduling ahead); ``first``: only those that found no
    other prompt waiting."""
    res = simulate(make_scenario(**{"deployment.engine": "fused", "deployment.batching.prefill_wait": wait,
                                    "workload.arrival.rate": 2.0, "workload.requests": 60,
                                    "workload.prompt_tokens": {"dist": "fixed", "value": prompt},
                                    "workload.output_tokens": {"dist": "fixed", "value": 400}, **over}))
    r, starts = res.requests, _step_starts(res.steps)
    assert np.all(r.finish > 0) and r.generated.sum() == r.output.sum()
    busy = np.array([bool(np.any((r.first_sched < a) & (a < r.finish))) for a in r.arrival])
    if first:
        busy &= np.array([not np.any((r.arrival < a) & (a < r.first_sched)) for a in r.arrival])
    assert busy.sum() > 20
    first = np.searchsorted(starts, r.arrival[busy], side="right")
    last = np.searchsorted(starts, r.first_sched[busy], side="right")
    return last - first


def test_without_batch_waiting_a_prompt_joins_after_the_step_in_progress() -> None:
    assert np.median(_waited(None)) == 1


def test_a_prompt_alone_waits_the_step_limit_while_decodes_run() -> None:
    # 256 tokens are far below 0.9 x 8192: the wait ends only after 20 steps (then the next step takes it)
    assert np.all(_waited({"steps": 20, "tokens_ratio": 0.9}, first=True) == 21)
    # a prompt that finds another one waiting goes in with it: the wait counts steps, not requests
    w = _waited({"steps": 20, "tokens_ratio": 0.9})
    assert w.max() == 21 and w.min() < 21


def test_enough_waiting_tokens_end_the_wait_at_once() -> None:
    # 0.02 x 8192 = 164 tokens: one 256-token prompt is enough
    assert np.median(_waited({"steps": 20, "tokens_ratio": 0.02})) == 1


def test_an_idle_replica_does_not_wait() -> None:
    res = simulate(make_scenario(**{"deployment.batching.prefill_wait": {"steps": 50, "tokens_ratio": 0.9},
                                    "workload.requests": 10,
                                    "workload.arrival": {"process": "closed_loop", "concurrency": 1}}))
    r = res.requests
    assert np.all(r.finish > 0) and np.array_equal(r.first_sched, r.arrival)


@pytest.mark.parametrize("bad", [{"steps": 0, "tokens_ratio": 0.5}, {"steps": 5, "tokens_ratio": 0},
                                 {"steps": 5, "tokens_ratio": 1.5}, {"steps": 5}])
def test_bad_batch_waiting_is_refused(bad: dict) -> None:
    with pytest.raises(InputError, match="prefill_wait"):
        scenario_from_dict({"model": "llama-3.1-8b", "deployment": {"gpu": "h100-sxm", "batching": {"prefill_wait": bad}}})


SPECULATIVE = {"method": "draft_model", "draft_model": "llama-3.2-1b", "k": 4, "acceptance": 0.7}


def test_verify_steps_count_towards_the_wait() -> None:
    # speculative decoding runs verify steps instead of decode steps; the wait still ends after 20 of them
    spec = {"deployment.speculative": SPECULATIVE}
    assert np.all(_waited({"steps": 20, "tokens_ratio": 0.9}, first=True, **spec) == 21)
    assert np.median(_waited(None, **spec)) == 1
