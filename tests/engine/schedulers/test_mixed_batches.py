"""Engines without mixed batches (SGLang's default): a step carries prefill chunks or decodes, never both;
decodes wait out prefill steps and their token gaps include them."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.catalog.engines import load_engine
from simulator.engine.simulate import simulate
from simulator.engine.state import DONE

from ..conftest import batching_and_kv, make_scenario, uniform_workload

workloads = st.fixed_dictionaries({
    **uniform_workload(rate=60.0, requests=80, prompt_high=3000, output_high=300),
    **batching_and_kv(),
    "deployment.pp": st.sampled_from([1, 1, 2]),
    "seed": st.integers(0, 10_000),
})


def test_profiles_say_which_engines_mix():
    assert load_engine("sglang").scheduler.mixed_batches is False
    for name in ("vllm", "trtllm"):
        assert load_engine(name).scheduler.mixed_batches is True


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads)
def test_no_step_carries_prefill_and_decodes(over):
    res = simulate(make_scenario(**{**over, "deployment.engine": "sglang"}))
    st_ = res.steps
    assert not ((st_["prefill_tokens"] > 0) & (st_["decode_seqs"] > 0)).any()
    r = res.requests
    done = r.status == DONE
    assert (r.generated[done] == r.output[done]).all()


def _two_requests(engine: str):
    """One long decode, and a 4,096-token prompt arriving while it decodes."""
    return simulate(make_scenario(**{
        "deployment.engine": engine, "workload.requests": 2, "seed": 3,
        "workload.arrival": {"process": "poisson", "rate": 2.0},
        "workload.prompt_tokens": {"dist": "fixed", "value": 4096},
        "workload.output_tokens": {"dist": "fixed", "value": 400}}))


def test_decodes_wait_out_a_prefill_step():
    mixed, split = _two_requests("vllm"), _two_requests("sglang")
    r = split.requests
    assert r.first_token[0] < r.arrival[1] < r.finish[0]     # the second arrives while the first decodes
    st_ = split.steps
    prefill_only = (st_["prefill_tokens"] > 0) & (st_["decode_seqs"] == 0)
    assert prefill_only.sum() >= 2                          # each request's prefill runs alone
    second = float(st_["dt_first"][prefill_only][-1])
    # the first request's longest gap spans the second's prefill step and its own next decode step
    assert split.requests.max_itl[0] > second
    m = mixed.steps
    assert ((m["prefill_tokens"] > 0) & (m["decode_seqs"] > 0)).any()
    assert split.requests.max_itl[0] > mixed.requests.max_itl[0]


def _two_requests_set(engine: str, mixed: bool):
    return simulate(make_scenario(**{
        "deployment.engine": engine, "deployment.batching.mixed_batches": mixed, "workload.requests": 2,
        "seed": 3, "workload.arrival": {"process": "poisson", "rate": 2.0},
        "workload.prompt_tokens": {"dist": "fixed", "value": 4096},
        "workload.output_tokens": {"dist": "fixed", "value": 400}}))


def test_the_deployment_overrides_the_engines_rule():
    # SGLang launched with --enable-mixed-chunk mixes; vLLM told not to mix runs prefills alone
    sg = _two_requests_set("sglang", True).steps
    assert ((sg["prefill_tokens"] > 0) & (sg["decode_seqs"] > 0)).any()
    vl = _two_requests_set("vllm", False).steps
    assert not ((vl["prefill_tokens"] > 0) & (vl["decode_seqs"] > 0)).any()
