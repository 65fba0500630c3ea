"""Prefix caching: block keys, hits that skip prefill, LRU eviction, prefix-aware routing, Mooncake hash ids."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.engine.prefix_cache import KeyStore, PrefixBlockPool, PrefixCache, block_keys
from simulator.engine.simulate import build_step_model, simulate
from simulator.engine.state import DONE, Requests
from simulator.metrics.summary import per_request, summarize
from simulator.perf.step import BatchShape
from simulator.workload.prefix import PromptSegments

from .conftest import make_scenario, uniform_workload


def _token_keys(ids, lens, bs):
    """Brute force: each token is (segment id, offset); a block's key is the tuple of all tokens up to it."""
    toks = [(int(i), k) for i, n in zip(ids, lens) for k in range(int(n))]
    return [tuple(toks[: (b + 1) * bs]) for b in range(len(toks) // bs)]


@pytest.mark.parametrize("bs", [1, 4, 16])
def test_block_keys_equal_exactly_when_prefixes_are_equal(bs):
    rng = np.random.default_rng(3)
    seqs = []
    for _ in range(12):
        k = int(rng.integers(1, 5))
        seqs.append((rng.integers(0, 3, size=k), rng.integers(1, 40, size=k)))
    for a_ids, a_len in seqs:
        for b_ids, b_len in seqs:
            ka, kb = block_keys(a_ids, a_len, bs), block_keys(b_ids, b_len, bs)
            ta, tb = _token_keys(a_ids, a_len, bs), _token_keys(b_ids, b_len, bs)
            assert len(ka) == len(ta)
            for i in range(min(len(ka), len(kb))):
                assert (ka[i] == kb[i]) == (ta[i] == tb[i])


def _cache(capacity: int, bs: int, prompts: list[list[tuple[int, int]]]) -> tuple[PrefixCache, Requests]:
    lens = [sum(x[1] for x in p) for p in prompts]
    reqs = Requests(np.array(lens), np.ones(len(lens), dtype=np.int64))
    off = np.concatenate([[0], np.cumsum([len(p) for p in prompts])])
    segs = PromptSegments(off, np.array([x[0] for p in prompts for x in p]), np.array([x[1] for p in prompts for x in p]))
    pool = PrefixBlockPool(capacity, bs, len(prompts))
    return PrefixCache(pool, reqs, KeyStore(reqs, segs)), reqs


def test_hits_refcounts_and_lru_eviction_from_the_tail():
    cache, reqs = _cache(10, 4, [[(7, 17)], [(7, 17)], [(9, 9)]])
    pool = cache.pool
    assert pool.grow(0, 17)                          # request 0 computes its prompt: 5 blocks
    cache.promote(0, 17)                             # 4 of them are full: cache entries
    assert pool.shared[0] == 4 and pool.used == 5
    assert cache.acquire(1) == 16                    # request 1 shares 4 blocks (limit: 16 of 17 tokens)
    assert cache.refs[block_keys(np.array([7]), np.array([17]), 4)[0]] == 2
    pool.release(0)
    pool.release(1)
    assert pool.used == 0 and pool.idle == 4 and cache.referenced() == 0
    # the deepest block was released first, so it is evicted first
    keys = block_keys(np.array([7]), np.array([17]), 4)
    assert list(cache.lru) == keys[::-1]
    assert pool.grow(2, 36)                          # 9 blocks: 3 cached blocks must go, tail first
    assert pool.used + pool.idle <= pool.capacity
    assert cache.evictions == 3 and list(cache.lru) == [keys[0]]


def test_duplicate_computation_shares_the_first_entry():
    cache, _ = _cache(20, 4, [[(1, 8)], [(1, 8)]])
    pool = cache.pool
    pool.grow(0, 8)
    pool.grow(1, 8)
    cache.promote(0, 8)
    cache.promote(1, 8)                              # same keys: request 1's private blocks are freed
    assert pool.used == 2 and cache.referenced() == 4
    pool.release(0), pool.release(1)
    assert pool.used == 0 and pool.idle == 2


def test_warm_shared_prefix_computes_only_the_suffixes():
    """100% of requests share a 1024-token system prompt; arrivals far apart (the cache is warm):
    every request after the first prefills only its own 100 tokens."""
    over = {"workload.arrival": {"process": "constant", "rate": 1.0}, "workload.requests": 20,
            "workload.prompt_tokens.value": 100, "workload.output_tokens.value": 8,
            "workload.prefix": {"system_prompt_tokens": 1024, "share": 1.0, "prompts": 1}}
    on = simulate(make_scenario(**over, **{"deployment.kv_cache.prefix_caching": True}))
    off = simulate(make_scenario(**over))
    r = on.requests
    assert (r.prompt == 1124).all() and (r.status == DONE).all()
    assert r.prefill_computed[0] == 1124
    assert (r.prefill_computed[1:] == 100).all()
    assert (r.first_cached[1:] == 1024).all()
    assert (off.requests.prefill_computed == 1124).all()
    # TTFT: a 100-token chunk against a 1024-token prefix instead of the whole prompt
    sm = build_step_model(on.scenario)
    hit = sm.price(BatchShape.prefill(1, 100, 1024))[0]
    miss = sm.price(BatchShape.prefill(1, 1124))[0]
    ttft_on, ttft_off = per_request(on)["ttft_s"].to_numpy(), per_request(off)["ttft_s"].to_numpy()
    assert ttft_on[1:] == pytest.approx(hit, rel=1e-9)
    assert ttft_off == pytest.approx(miss, rel=1e-9)
    s = summarize(on)["prefix_cache"]
    assert s["hit_rate"] == pytest.approx(19 * 1024 / (20 * 1124))
    assert s["prefill_tokens_saved"] == 19 * 1024
    assert s["references_at_end"] == 0


def test_concurrent_requests_hit_blocks_still_being_prefilled():
    """Offline: the first request's prompt blocks become entries as its chunks complete, so requests
    admitted after the first chunk share them (512-token budget, 2048-token shared prefix)."""
    s = make_scenario(**{"workload.arrival": {"process": "offline"}, "workload.requests": 8,
                         "workload.prompt_tokens.value": 64, "workload.output_tokens.value": 4,
                         "workload.prefix": {"system_prompt_tokens": 2048, "share": 1.0},
                         "deployment.batching.max_batched_tokens": 512,
                         "deployment.kv_cache.prefix_caching": True})
    r = simulate(s).requests
    assert r.cached[1:].sum() > 0
    assert int(r.prefill_computed.sum()) + int(r.cached.sum()) == int(r.prompt.sum())


def test_prefix_aware_routing_beats_round_robin():
    over = {"deployment.replicas": 4, "deployment.kv_cache.prefix_caching": True, "workload.requests": 400,
            "workload.arrival.rate": 20.0, "workload.prompt_tokens.value": 64,
            "workload.prefix": {"system_prompt_tokens": 4096, "share": 1.0, "prompts": 8}}
    rr = summarize(simulate(make_scenario(**over, **{"deployment.router": "round_robin"})))["prefix_cache"]
    pa = summarize(simulate(make_scenario(**over, **{"deployment.router": "prefix_aware"})))["prefix_cache"]
    assert pa["hit_rate"] > rr["hit_rate"]
    # 8 prompts: with prefix-aware routing each is computed about once, then always hit
    assert pa["requests_with_hits"] >= 400 - 8 * 4


def test_router_prefix_aware_needs_prefix_caching():
    from simulator.errors import InputError
    with pytest.raises(InputError, match="prefix_caching"):
        make_scenario(**{"deployment.router": "prefix_aware"})


def test_mooncake_hash_ids_map_to_engine_blocks(tmp_path):
    """512-token hash blocks, 16-token engine blocks: equal leading hash ids share whole engine blocks."""
    rows = [{"timestamp": 0, "input_length": 1000, "output_length": 4, "hash_ids": [0, 1]},
            {"timestamp": 5000, "input_length": 1500, "output_length": 4, "hash_ids": [0, 1, 2]},
            {"timestamp": 10000, "input_length": 700, "output_length": 4, "hash_ids": [0, 9]}]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in rows))
    s = make_scenario(**{"workload": {"arrival": {"process": "trace", "path": str(path)}},
                         "deployment.kv_cache.prefix_caching": True})
    r = simulate(s).requests
    assert list(r.first_cached) == [0, 992, 512]     # 62 full blocks of the 1000 shared tokens; one 512 block


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({
    **uniform_workload(80.0, 120, 1500, 200, rate_low=1.0),
    "workload.prefix": st.fixed_dictionaries({"system_prompt_tokens": st.integers(1, 2000),
                                              "share": st.floats(0, 1), "prompts": st.integers(1, 4)}),
    "workload.sessions": st.one_of(st.none(), st.fixed_dictionaries({"turns": st.integers(1, 4),
                                                                     "think_time_s": st.floats(0, 2)})),
    "deployment.batching.max_batch_size": st.integers(1, 64),
    "deployment.batching.max_batched_tokens": st.integers(64, 4096),
    "deployment.kv_cache.block_size": st.sampled_from([1, 8, 16]),
    "deployment.kv_cache.num_blocks": st.integers(300, 3000),
    "deployment.kv_cache.preemption": st.sampled_from(["recompute", "swap"]),
    "deployment.replicas": st.integers(1, 3),
    "deployment.router": st.sampled_from(["round_robin", "prefix_aware", "least_kv"]),
    "seed": st.integers(0, 10_000),
}))
def test_block_pool_invariants_with_prefix_caching(over):
    over = {k: v for k, v in over.items() if v is not None}
    s = make_scenario(**over, **{"deployment.kv_cache.prefix_caching": True})
    res = simulate(s)
    r = res.requests
    done = r.status == DONE
    assert ((r.status == DONE) | (r.status == 4)).all()
    assert (r.generated[done] == r.output[done]).all()
    # every prompt token was computed or taken from the cache (recompute adds more)
    assert (r.prefill_computed[done] + r.cached[done] >= r.prompt[done]).all()
    pc = res.features["prefix_cache"]
    assert pc["references_at_end"] == 0                 # every reference returned
    assert pc["peak_resident_fraction"] <= 1.0          # cached blocks included, never above capacity
    assert res.kv_blocks_in_use_at_end == [0] * s.deployment.replicas
    assert max(res.kv_blocks_peak) <= res.kv_blocks
    assert (res.steps["kv_blocks"] <= res.kv_blocks).all()


MOONCAKE = Path(__file__).resolve().parents[3] / "shared" / "traces" / "mooncake_conversation_trace.jsonl"


@pytest.mark.skipif(not MOONCAKE.exists(), reason=f"Mooncake trace not present at {MOONCAKE}")
def test_unbounded_cache_hit_rate_equals_repeated_hash_chains():
    """With room for everything, the hit rate is the share of prompt tokens in leading hash-id chains
    seen before (counted directly from the trace, 512 tokens per id), up to engine-block rounding."""
    n = 1000
    seen: set[tuple[int, ...]] = set()
    hit = total = 0
    with MOONCAKE.open() as f:
        for _, line in zip(range(n), f):
            row = json.loads(line)
            ids, p = row["hash_ids"], row["input_length"]
            k = 0
            while k < len(ids) and tuple(ids[: k + 1]) in seen:
                k += 1
            hit += min(k * 512, p - 1)
            total += p
            seen.update(tuple(ids[: j + 1]) for j in range(len(ids)))
    s = make_scenario(**{"workload": {"arrival": {"process": "trace", "path": str(MOONCAKE), "speedup": 0.25},
                                      "requests": n},
                         "deployment.kv_cache.prefix_caching": True, "deployment.kv_cache.num_blocks": 2_000_000})
    res = simulate(s)
    rate = summarize(res)["prefix_cache"]["hit_rate"]
    assert rate == pytest.approx(hit / total, abs=0.002)
    assert res.features["prefix_cache"]["evicted_blocks"] == 0
