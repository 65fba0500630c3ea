"""Large MoE models end to end on 8 × H200 (fp8): DeepSeek-V3 and Qwen3-235B-A22B with expert parallelism."""
from __future__ import annotations

import pytest

from simulator.engine.simulate import build_step_model, simulate
from simulator.engine.state import DONE
from simulator.errors import InputError
from simulator.metrics.summary import summarize
from simulator.perf.step import BatchShape

from .conftest import make_scenario

H200X8 = {"deployment.gpu": "h200-sxm", "deployment.tp": 8, "deployment.weight_dtype": "fp8",
          "deployment.kv_dtype": "fp8", "workload.requests": 12, "workload.arrival.rate": 2.0}


@pytest.mark.parametrize("model", ["deepseek-v3", "qwen3-235b-a22b"])
@pytest.mark.parametrize("moe", [None, {"expert_parallel": 8}, {"expert_parallel": 8, "attention": "dp"},
                                 {"expert_parallel": 8, "balance": "zipf", "skew": 1.2}],
                         ids=["tp", "ep", "ep-dp-attention", "ep-zipf"])
def test_large_moe_models_run(model, moe):
    over = {"model": model, **H200X8}
    if moe is not None:
        over["deployment.moe"] = moe
    res = simulate(make_scenario(**over))
    assert (res.requests.status == DONE).all()
    sm = summarize(res)
    assert sm["gpus"] == 8
    assert 0 < sm["tpot_s"]["p50"] < 0.2


def test_dp_attention_multiplies_mla_kv_capacity():
    """MLA's latent is replicated on every tensor-parallel GPU; with data-parallel attention each GPU keeps
    the latents of its own sequences, so the replica holds several times more tokens."""
    tp = simulate(make_scenario(**{"model": "deepseek-v3", **H200X8, "workload.requests": 1}))
    dp = simulate(make_scenario(**{"model": "deepseek-v3", **H200X8, "workload.requests": 1,
                                   "deployment.moe": {"expert_parallel": 8, "attention": "dp"}}))
    assert dp.kv_blocks > 3 * tp.kv_blocks


def test_skewed_routing_slows_decoding():
    base = {"model": "qwen3-235b-a22b", **H200X8}
    uni = build_step_model(make_scenario(**base, **{"deployment.moe": {"expert_parallel": 8}}))
    skew = build_step_model(make_scenario(**base, **{"deployment.moe": {"expert_parallel": 8, "balance": "zipf",
                                                                       "skew": 1.5}}))
    shape = BatchShape.prefill(4, 2048)
    assert skew.price(shape, exact=True, detail=True).breakdown["moe"] > 1.2 * uni.price(shape, exact=True, detail=True).breakdown["moe"]


def test_expert_parallel_must_equal_tp():
    with pytest.raises(InputError, match="expert_parallel"):
        make_scenario(**{"model": "qwen3-235b-a22b", **H200X8, "deployment.moe": {"expert_parallel": 4}})


def test_moe_options_on_a_dense_model_are_refused():
    with pytest.raises(InputError, match="mixture-of-experts"):
        simulate(make_scenario(**{"deployment.moe": {"balance": "zipf"}}))
