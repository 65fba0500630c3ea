"""Engine server defaults fill only the scenario keys the user left unset (engine/engine_defaults.py)."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.config.loader import scenario_from_dict
from simulator.config.scenario import Deployment
from simulator.engine.engine_defaults import describe, effective_deployment, engine_for
from simulator.engine.simulate import simulate
from simulator.errors import InputError

from .conftest import make_scenario


def test_defaults_fill_unset_keys_only():
    s = make_scenario(**{"deployment.engine": "vllm", "deployment.batching.max_batch_size": 64,
                         "deployment.kv_cache.prefix_caching": False})
    e = effective_deployment(s.deployment)
    assert e.batching.max_batch_size == 64                # set by the user
    assert e.kv_cache.prefix_caching is False             # set by the user
    assert e.batching.max_batched_tokens == 8192          # vLLM's H100 server default
    assert e.kv_cache.gpu_memory_utilization == 0.9
    assert effective_deployment(e) == e                   # idempotent


def test_engine_defaults_differ_from_the_generic_ones():
    sg = effective_deployment(make_scenario(**{"deployment.engine": "sglang"}).deployment)
    assert sg.batching.max_batch_size == 2048 and sg.kv_cache.gpu_memory_utilization == 0.88
    assert sg.kv_cache.prefix_caching is True
    trt = effective_deployment(make_scenario(**{"deployment.engine": "trtllm"}).deployment)
    assert trt.batching.chunked_prefill is False
    assert trt.kv_cache.gpu_memory_utilization == 0.9     # not the engine's: its figure is of free memory


def test_no_scheduler_block_leaves_the_deployment_alone():
    d = make_scenario(**{"deployment.engine": "fused"}).deployment
    assert effective_deployment(d) is d and describe(d) is None


def test_static_batching_keeps_its_own_settings():
    d = make_scenario(**{"deployment.engine": "vllm", "deployment.batching.policy": "static"}).deployment
    e = effective_deployment(d)
    assert e.batching == d.batching and e.kv_cache.prefix_caching is False


def test_too_many_sequences_for_the_engine_token_budget_is_one_line():
    d = make_scenario(**{"deployment.engine": "vllm", "deployment.batching.max_batch_size": 8192}).deployment
    # the scenario default (8192) passes the scenario check; the engine's default then applies
    e = effective_deployment(d)
    assert e.batching.max_batched_tokens == 8192
    d2 = d.model_copy(update={"batching": d.batching.model_copy(update={"max_batch_size": 9000})})
    with pytest.raises(InputError) as info:
        effective_deployment(d2)
    assert info.value.field == "deployment.batching.max_batched_tokens"


def test_run_notes_state_the_effective_values():
    res = simulate(make_scenario(**{"deployment.engine": "vllm", "workload.requests": 5,
                                    "deployment.batching.max_batch_size": 32}))
    note = next(n for n in res.notes if n.startswith("engine vllm scheduler"))
    assert "batching.max_batch_size=32," in note
    assert "batching.max_batched_tokens=8192 (engine default)" in note
    assert "kv_cache.prefix_caching=True (engine default)" in note


def test_overlap_host_set_in_the_deployment_overrides_the_profile():
    d = Deployment(engine="vllm")
    assert engine_for(d).overlap_host is True
    off = engine_for(d.model_copy(update={"overlap_host": False}))
    assert off.overlap_host is False and off.kernels == engine_for(d).kernels
    assert engine_for(Deployment(engine="fused", overlap_host=True)).overlap_host is True


def test_a_run_without_overlap_pays_the_host_time_on_every_step():
    # Same vLLM deployment and arrivals: with the host in turn, each step lasts GPU + host time
    # instead of max(GPU, host), so TPOT grows by about the host time of a step (1.5 ms + 10 us/seq).
    base = {"model": "llama-3.1-8b", "deployment": {"engine": "vllm"},
            "workload": {"requests": 60, "arrival": {"process": "closed_loop", "concurrency": 4},
                         "prompt_tokens": {"dist": "fixed", "value": 256},
                         "output_tokens": {"dist": "fixed", "value": 64}}}
    on = simulate(scenario_from_dict(base))
    off = simulate(scenario_from_dict({**base, "deployment": {"engine": "vllm", "overlap_host": False}}))
    def batch4_decode_step(res):     # seconds of one decode step of all four clients (the last of a row)
        st = res.steps
        rows = (st["prefill_tokens"] == 0) & (st["decode_seqs"] == 4)
        return float(np.median(st["dt_last"][rows]))
    extra = batch4_decode_step(off) - batch4_decode_step(on)
    assert extra == pytest.approx(1.5e-3 + 4 * 1e-5, rel=1e-6)
