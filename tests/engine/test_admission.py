"""Engine scheduler rules (engine/admission.py): reserve never evicts, token_ratio sits between the
others, conservation holds under every rule, and the long-prompt offline batch does not storm."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.engine.simulate import simulate
from simulator.engine.state import DONE, REJECTED

from .conftest import batching_and_kv, make_scenario, uniform_workload

ENGINES = ("fused", "vllm", "sglang", "trtllm")

workloads = st.fixed_dictionaries({
    **uniform_workload(rate=80.0, requests=100, prompt_high=3000, output_high=600),
    **batching_and_kv(),
    "deployment.kv_cache.prefix_caching": st.booleans(),
    "deployment.replicas": st.integers(1, 3),
    "deployment.pp": st.sampled_from([1, 1, 2]),
    "seed": st.integers(0, 10_000),
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads)
def test_reserve_never_preempts(over):
    """GUARANTEED_NO_EVICT: a request starts only when its whole KV fits beside the running ones' growth."""
    res = simulate(make_scenario(**{**over, "deployment.engine": "trtllm"}))
    assert int(res.requests.preemptions.sum()) == 0
    assert np.isin(res.requests.status, [DONE, REJECTED]).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads, st.sampled_from(ENGINES))
def test_conservation_under_every_rule(over, engine):
    s = make_scenario(**{**over, "deployment.engine": engine})
    res = simulate(s)
    r = res.requests
    assert np.isin(r.status, [DONE, REJECTED]).all()
    assert (r.reject_reason[r.status == REJECTED] > 0).all()
    done = r.status == DONE
    assert (r.generated[done] == r.output[done]).all()          # tokens asked for = tokens produced
    assert (r.prefill_computed[done] + r.cached[done] >= r.prompt[done]).all()
    assert max(res.kv_blocks_peak) <= res.kv_blocks            # blocks never above capacity
    assert res.kv_blocks_in_use_at_end == [0] * s.deployment.replicas   # and all returned


def _offline(engine: str, requests: int, prompt: int, output: int, **over):
    return simulate(make_scenario(**{"deployment.engine": engine, "workload.requests": requests,
                                     "workload.arrival": {"process": "offline"},
                                     "workload.prompt_tokens": {"dist": "fixed", "value": prompt},
                                     "workload.output_tokens": {"dist": "fixed", "value": output}, **over}))


def test_token_ratio_between_reserve_and_greedy():
    """Short prompts, long outputs, a small pool: reserve admits a request only for its whole
    prompt + output, token_ratio for its prompt + output beside a fraction of the running ones'
    remaining outputs, greedy for its next chunk. So token_ratio runs more requests at once than
    reserve and evicts fewer than greedy."""
    over = {"deployment.kv_cache.num_blocks": 600, "deployment.kv_cache.prefix_caching": False}
    runs = {e: _offline(e, 200, 64, 512, **over) for e in ("vllm", "sglang", "trtllm")}
    peak = {e: int(r.steps["running"].max()) for e, r in runs.items()}
    pre = {e: int(r.requests.preemptions.sum()) for e, r in runs.items()}
    assert peak["sglang"] > peak["trtllm"]
    assert pre["sglang"] < pre["vllm"]
    assert pre["trtllm"] == 0 and pre["vllm"] > 0
    assert all((r.requests.status == DONE).all() for r in runs.values())


# Bounds from the rules for 300 offline requests of 20,000 / 2,000 tokens (fp8 Llama-3.1-8B, one H100,
# ~1.0M KV tokens, max_batch_size 2048). Decoding adds at most Σ outputs of KV beyond the admitted
# prompts, and one eviction frees a request holding at least its 20,000-token prompt, so shedding the
# whole growth takes output / prompt = 0.1 eviction per request. reserve never evicts. token_ratio
# reserves each new request's full output, so only the running requests' estimate can fall short: within
# the shedding bound. greedy re-admits a victim as soon as its next chunk fits (from its cached blocks
# under vLLM's default prefix caching) and may evict it again: a few times the shedding bound, far below
# the generic scheduler's storm (about 18 per request).
LONG_BOUNDS = {"trtllm": 0.0, "sglang": 0.1, "vllm": 0.3}


@pytest.mark.parametrize("engine", sorted(LONG_BOUNDS))
def test_long_prompt_offline_batch_does_not_storm(engine):
    over = {"deployment.weight_dtype": "fp8", "deployment.kv_dtype": "fp8",
            "deployment.batching.max_batch_size": 2048}
    if engine == "trtllm":
        over["deployment.batching.chunked_prefill"] = True   # its default refuses prompts over max_num_tokens
    res = _offline(engine, 300, 20_000, 2_000, **over)
    assert (res.requests.status == DONE).all()
    assert res.requests.preemptions.sum() / 300 <= LONG_BOUNDS[engine]
    generic = _offline("fused", 300, 20_000, 2_000, **over)
    assert generic.requests.preemptions.sum() / 300 > 1.0       # the storm the rules remove


def test_verify_steps_decay_the_new_token_ratio(monkeypatch):
    """SGLang lowers its new-token ratio at every decode step, speculative verify steps included."""
    from simulator.engine.admission import TokenRatio
    counted: list[int] = []
    stepped = TokenRatio.stepped

    def count(self, steps: int) -> None:
        counted.append(steps)
        stepped(self, steps)

    monkeypatch.setattr(TokenRatio, "stepped", count)
    spec = {"method": "draft_model", "draft_model": "llama-3.2-1b", "k": 4, "acceptance": 0.7}
    res = simulate(make_scenario(**{"deployment.engine": "sglang", "deployment.speculative": spec,
                                    "workload.requests": 60}))
    s = res.steps
    decoding = s["decode_seqs"] > 0
    assert int(s["steps"][decoding & (s["steps"] > 1)].sum()) > 0     # verify runs took place
    assert sum(counted) == int(s["steps"][decoding].sum())
