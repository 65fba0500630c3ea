"""The compiled decode set against the pure-Python reference: the same results, operation by
operation (random sequences) and simulation by simulation (bit-identical runs)."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.engine.decode_set import NativeDecodeSet, PyDecodeSet, decode_set_type
from simulator.engine.itl import ItlLog
from simulator.engine.kvcache import BlockPool
from simulator.engine.simulate import simulate
from simulator.engine.state import Requests
from simulator.native import NATIVE_ENV
from simulator.native.build import REQUIRE_ENV

from .conftest import make_scenario, reference_decode_set

native = pytest.mark.skipif(NativeDecodeSet is None and os.environ.get(REQUIRE_ENV) != "1",
                            reason="C extension not built (no compiler at install); the reference runs")

N_REQ = 24
_COLS = ("ids", "kv", "off", "end", "held", "last", "maxitl")


def test_the_compiled_decode_set_is_built_where_required():
    """CI installs with SERVESIM_REQUIRE_NATIVE=1: there the extension must have been built."""
    if os.environ.get(REQUIRE_ENV) != "1":
        pytest.skip(f"{REQUIRE_ENV} is not set")
    assert NativeDecodeSet is not None


def test_the_engine_picks_the_compiled_set_unless_switched_off(monkeypatch):
    monkeypatch.setenv(NATIVE_ENV, "0")
    assert decode_set_type() is PyDecodeSet
    monkeypatch.setenv(NATIVE_ENV, "1")
    assert decode_set_type() is (NativeDecodeSet or PyDecodeSet)


class World:
    """One decode set with its own request columns, block pool and ITL log."""

    def __init__(self, cls: type, prompt: np.ndarray, output: np.ndarray, blocks: int, bs: int) -> None:
        self.reqs = Requests(prompt, output)
        self.pool = BlockPool(blocks, bs, N_REQ)
        self.itl = ItlLog(N_REQ)
        loop = self.itl.new_loop()
        self.itl.new_loop()
        self.dec = cls(self.reqs, self.pool, self.itl, loop)

    def state(self) -> dict:
        d, r = self.dec, self.reqs
        out = {c: np.asarray(getattr(d, c)).copy() for c in _COLS}
        out.update(n=d.n, len=len(d), kv_sum=d.kv_sum, held_sum=d.held_sum, left_min=d.left_min,
                   used=self.pool.used, peak=self.pool.peak, rows=list(self.itl.counts))
        for c in ("kv", "generated", "last_token", "max_itl"):
            out["r." + c] = getattr(r, c).copy()
        out["pool.held"] = self.pool.held.copy()
        out["row0"], out["last0"] = self.itl.row0.copy(), self.itl.last0.copy()
        out["spans"] = [tuple(np.asarray(x).tolist() if isinstance(x, np.ndarray) else x for x in sp)
                        for sp in self.itl.spans]
        return out


def same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return type(a) is type(b) and a == b


def apply(w: World, op: tuple) -> object:
    """Run one operation on a world; returns its result or the type of the exception it raised."""
    name, args = op[0], op[1:]
    d = w.dec
    try:
        if name == "join":     # prefill done: global columns set, blocks taken, then it joins
            rid, kv, gen, last, maxitl = args
            if rid in set(np.asarray(d.ids).tolist()):
                return "member"
            w.reqs.kv[rid], w.reqs.generated[rid] = kv, gen
            w.reqs.last_token[rid], w.reqs.max_itl[rid] = last, maxitl
            if not w.pool.grow(rid, kv):
                return False
            return d.add(np.array([rid], dtype=np.int64))
        if name == "row":
            return w.itl.row(args[0], 0.0, 0.01, 0.0, 1)
        if name == "advance":
            steps = min(args[0], max(d.left_min, 0))
            if not steps or not d.reserve(steps):
                return "skipped"
            return d.advance(steps, *args[1:])
        if name == "advance_tokens":
            left = np.asarray(d.left())
            tok = np.minimum(np.asarray(args[0][: d.n] + [1] * max(0, d.n - len(args[0])), dtype=np.int64), left)
            return d.advance_tokens(np.maximum(tok, 0), *args[1:])
        if name == "remove":
            mask = np.asarray((args[0] * (d.n // max(len(args[0]), 1) + 1))[: d.n], dtype=bool)
            return d.remove(mask)
        if name == "hold":
            return d.hold(np.asarray((args[0] * (d.n + 1))[: d.n], dtype=np.int64))
        if name == "ctx_sums":
            return d.ctx_sums(*args)
        if name == "write_back":
            return d.write_back()
        return getattr(d, name)(*args)
    except Exception as e:  # both must fail alike
        return type(e)


steps_ = st.integers(1, 40)
times = st.floats(0.0, 100.0)
ops = st.one_of(
    st.tuples(st.just("join"), st.integers(0, N_REQ - 1), st.integers(1, 300), st.integers(1, 40),
              st.one_of(times, st.just(float("nan"))), st.floats(0.0, 1.0)),
    st.tuples(st.just("row"), st.integers(0, 1)),
    st.tuples(st.just("advance"), steps_, times, times, st.floats(0.0, 0.5)),
    st.tuples(st.just("advance_tokens"), st.lists(st.integers(0, 4), max_size=8), times, times, st.floats(0.0, 0.5)),
    st.tuples(st.just("remove"), st.lists(st.booleans(), min_size=1, max_size=8)),
    st.tuples(st.just("remove_finished")),
    st.tuples(st.just("finished")), st.tuples(st.just("left")),
    st.tuples(st.just("reserve"), st.integers(0, 60)), st.tuples(st.just("extra_blocks"), st.integers(0, 60)),
    st.tuples(st.just("hold"), st.lists(st.integers(0, 30), min_size=1, max_size=6)),
    st.tuples(st.just("grow")), st.tuples(st.just("write_back")),
    st.tuples(st.just("ctx_sums"), st.integers(0, 30), st.sampled_from([None, 0, 64, 200]), st.integers(1, 4)),
)


@native
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, max_size=60), st.integers(20, 400), st.sampled_from([1, 4, 16]), st.integers(0, 2**31))
def test_every_operation_matches_the_reference(seq, blocks, bs, seed):
    rng = np.random.default_rng(seed)
    prompt = rng.integers(1, 500, N_REQ)
    output = rng.integers(2, 400, N_REQ)
    py, c = World(PyDecodeSet, prompt, output, blocks, bs), World(NativeDecodeSet, prompt, output, blocks, bs)
    for op in seq:
        got_py, got_c = apply(py, op), apply(c, op)
        assert same(got_py, got_c), (op, got_py, got_c)
        sp, sc = py.state(), c.state()
        for k in sp:
            assert same(sp[k], sc[k]), (op, k, sp[k], sc[k])


def fingerprint(**over: object) -> str:
    res = simulate(make_scenario(**over))
    h, q = hashlib.sha1(), res.requests
    for k in ("first_token", "last_token", "finish", "max_itl", "generated", "kv", "preemptions", "replica"):
        h.update(np.ascontiguousarray(getattr(q, k)).tobytes())
    for k in sorted(res.steps):
        h.update(np.ascontiguousarray(res.steps[k]).tobytes())
    p50, p99 = res.request_itl()
    h.update(np.nan_to_num(p50).tobytes() + np.nan_to_num(p99).tobytes())
    return h.hexdigest()


_LOADED = {"workload.requests": 300, "workload.arrival.rate": 40.0,
           "workload.prompt_tokens": {"dist": "lognormal", "median": 400, "sigma": 0.9, "max": 4000},
           "workload.output_tokens": {"dist": "lognormal", "median": 120, "sigma": 0.9, "max": 1500}}
SCENARIOS = {
    "plain": {},
    "loaded": _LOADED,
    "recompute, short of blocks": {**_LOADED, "deployment.kv_cache.num_blocks": 500},
    "swap, short of blocks": {**_LOADED, "deployment.kv_cache.num_blocks": 500, "deployment.kv_cache.preemption": "swap"},
    "pipeline of 3": {**_LOADED, "deployment.pp": 3, "deployment.kv_cache.num_blocks": 700},
    "speculative": {**_LOADED, "deployment.speculative": {"method": "draft_model", "draft_model": "llama-3.2-1b",
                                                           "k": 4, "acceptance": 0.7}},
    "prefix cache": {**_LOADED, "deployment.kv_cache.prefix_caching": True,
                     "workload.prefix": {"system_prompt_tokens": 512, "share": 0.8, "prompts": 3}},
    "sliding window": {**_LOADED, "model": "gemma-3-12b"},
    "polled every 10 steps": {**_LOADED, "deployment.batching.recv_interval": 10},
    "disaggregated": {**_LOADED, "deployment.disaggregation": {"prefill": {"replicas": 1}, "decode": {"replicas": 2},
                                                    "link": {"bandwidth_gbps": 50.0, "latency_s": 0.002}}},
}


@native
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_simulations_are_bit_identical_with_either_decode_set(name):
    over = SCENARIOS[name]
    compiled = fingerprint(**over)
    with reference_decode_set():
        reference = fingerprint(**over)
    assert compiled == reference


def test_a_run_without_the_compiled_parts_says_so(monkeypatch):
    """Where the install found no C compiler the run's notes say that the references ran; where the
    parts were built, no such note."""
    from simulator.engine import decode_set
    from simulator.engine.simulate import NOT_COMPILED

    if NativeDecodeSet is not None:
        assert NOT_COMPILED not in simulate(make_scenario(**{"workload.requests": 20})).notes
    monkeypatch.setattr(decode_set, "NativeDecodeSet", None)
    assert decode_set_type() is PyDecodeSet
    assert NOT_COMPILED in simulate(make_scenario(**{"workload.requests": 20})).notes
