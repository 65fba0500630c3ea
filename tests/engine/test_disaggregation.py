"""Prefill/decode disaggregation: KV transfer time exactly bytes / bandwidth + latency, FIFO links,
decode memory, and one-line errors."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.catalog.gpus import load_gpu
from simulator.catalog.models import load_model
from simulator.perf.memory import memory_plan
from simulator.engine.simulate import build_step_model, simulate
from simulator.engine.state import DONE
from simulator.errors import InputError
from simulator.metrics.summary import per_request, summarize
from simulator.perf.step import BatchShape

from .conftest import make_scenario

DIS = {"prefill": {"replicas": 1}, "decode": {"replicas": 1}, "link": {"bandwidth_gbps": 10.0, "latency_s": 0.002}}


def _kv_bytes(prompt: int) -> float:
    return prompt * load_model("llama-3.1-8b").kv_bytes_per_token("bf16")


def test_transfer_time_is_bytes_over_bandwidth_plus_latency():
    s = make_scenario(**{"deployment.disaggregation": DIS, "workload.requests": 5,
                         "workload.arrival": {"process": "constant", "rate": 0.5}})
    res = simulate(s)
    r = res.requests
    expected = _kv_bytes(256) / 10e9 + 0.002
    assert np.allclose(r.kv_transfer_s, expected, rtol=1e-12)
    # TTFT is the prefill alone; the second token comes after the transfer and one decode step
    sm = build_step_model(s)
    prefill = sm.price(BatchShape.prefill(1, 256))[0]
    df = per_request(res)
    assert df["ttft_s"].to_numpy() == pytest.approx(prefill, rel=1e-9)
    decode = sm.price(BatchShape.decode(1, 256))[0]
    gap = r.finish - r.first_token                              # 31 more tokens, all on the decode pool
    assert (gap > expected + 31 * decode * 0.99).all() and (gap < expected + 31 * decode * 1.05).all()
    assert (r.replica == 1).all()                               # decoded on the decode replica (index 1)
    assert res.total_gpus == 2


def test_link_sends_one_transfer_after_another():
    s = make_scenario(**{"deployment.disaggregation": DIS, "workload.requests": 2,
                         "workload.arrival": {"process": "offline"}})
    r = simulate(s).requests
    one = _kv_bytes(256) / 10e9
    # both prompts finish prefill in the same step; the second transfer waits for the first
    assert sorted(r.kv_transfer_s) == pytest.approx([one + 0.002, 2 * one + 0.002], rel=1e-12)


def test_pools_keep_their_own_gpus_and_memory():
    dis = {"prefill": {"replicas": 2, "tp": 2}, "decode": {"replicas": 1, "gpu": "h200-sxm"},
           "link": {"bandwidth_gbps": 50.0}}
    s = make_scenario(**{"deployment.disaggregation": dis, "workload.requests": 60})
    res = simulate(s)
    assert res.total_gpus == 2 * 2 + 1
    m, g = load_model("llama-3.1-8b"), load_gpu("h200-sxm")
    h200 = memory_plan(m, g, "bf16", "bf16", 1, 1, gpu_memory_utilization=0.9, max_batched_tokens=8192).blocks(16)
    h100_tp2 = memory_plan(m, load_gpu("h100-sxm"), "bf16", "bf16", 2, 1, gpu_memory_utilization=0.9,
                           max_batched_tokens=8192).blocks(16)
    assert list(res.kv_blocks_by_replica) == [h100_tp2, h100_tp2, h200]
    assert (res.requests.status == DONE).all()
    assert res.kv_blocks_in_use_at_end == [0, 0, 0]
    sm = summarize(res)
    assert sm["disaggregation"]["transfers"] == 60
    assert sm["gpus"] == 5


def test_decode_memory_is_taken_on_arrival_and_waits_when_short():
    dis = {**DIS, "decode": {"replicas": 1, "kv_cache": {"num_blocks": 40, "block_size": 16}}}
    s = make_scenario(**{"deployment.disaggregation": dis, "workload.requests": 30,
                         "workload.arrival": {"process": "offline"}})
    res = simulate(s)
    assert (res.requests.status == DONE).all()
    assert (res.requests.generated == res.requests.output).all()
    dec = res.steps["replica"] == 1
    assert res.steps["kv_blocks"][dec].max() <= 40


def test_zero_decode_replicas_is_a_one_line_error():
    with pytest.raises(InputError) as err:
        make_scenario(**{"deployment.disaggregation": {**DIS, "decode": {"replicas": 0}}})
    assert "deployment.disaggregation.decode.replicas" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_link_is_an_error():
    with pytest.raises(InputError, match="deployment.disaggregation.link"):
        make_scenario(**{"deployment.disaggregation": {"prefill": {}, "decode": {}}})
