"""The price of a step from its memoised parts: the direct lookups give the sums of the parts that
building the step gives, and the compiled lookups (``native/step_price.c``) are bit-identical to
the reference, for steps of every kind."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.perf.lean import _native, memoised_sums, part_sums
from simulator.perf.step import BatchShape, StepModel

native = pytest.mark.skipif(_native is None, reason="C extension not built (no compiler at install)")

# the fixtures (an inline model, GPU and engine) are read only: sharing them between examples is safe
chunk = st.tuples(st.integers(0, 6000), st.integers(1, 2048))
steps = st.tuples(st.lists(chunk, max_size=3), st.integers(0, 64), st.integers(1, 4000), st.integers(1, 4))


def shape_of(chunks, n, ctx, q) -> BatchShape:
    decodes = BatchShape.decode_total(n, float(n * (ctx + q)), None, q) if n else None
    return BatchShape.mixed(chunks, decodes)


def priced(model: StepModel, shapes) -> list[tuple]:
    """Memo keys of ``shapes`` after pricing each once (so that all their parts are memoised)."""
    keys = []
    for b in shapes:
        if b.prefill_tokens + b.decode_seqs * b.decode_q <= 0:
            continue
        model.price(b)
        keys.append(model.memo.rounded_key(b))
    return keys


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(steps, min_size=1, max_size=6))
def test_the_lookups_sum_the_parts_that_building_the_step_gives(llama8b, flat_gpu, fused, cases):
    m = StepModel(llama8b, flat_gpu, fused)
    for key in priced(m, [shape_of(c, n, ctx, q) for c, n, ctx, q in cases]):
        parts, graph = m._parts_of(key)
        assert memoised_sums(m.memo.entries, fused.cuda_graphs, key) == (*part_sums(parts), graph)


def test_a_missing_part_or_a_window_gives_none(llama8b, flat_gpu, fused):
    m = StepModel(llama8b, flat_gpu, fused)
    key = m.memo.rounded_key(shape_of([(100, 300)], 4, 800, 1))
    assert memoised_sums(m.memo.entries, True, key) is None            # nothing priced yet
    m.price(BatchShape(*key))
    assert memoised_sums(m.memo.entries, True, key) is not None
    windowed = key[:6] + (1.0, 1.0, 1.0) + key[9:]
    assert memoised_sums(m.memo.entries, True, windowed) is None
    assert memoised_sums(m.memo.entries, True, (0, 0, 0.0, 0.0, 0, 0.0, None, None, None, 1)) is None


@native
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(steps, min_size=1, max_size=6), st.booleans())
def test_compiled_sums_equal_the_reference(llama8b, flat_gpu, fused, cases, graphs):
    m = StepModel(llama8b, flat_gpu, fused)
    keys = priced(m, [shape_of(c, n, ctx, q) for c, n, ctx, q in cases])
    keys.append(m.memo.rounded_key(shape_of([(7, 9)], 3, 50, 2)))          # parts not memoised: None
    for key in keys:
        ref = memoised_sums(m.memo.entries, graphs, key)
        got = _native.memoised_sums(m.memo.entries, graphs, key)
        assert ref == got
        if ref is not None:
            assert [type(x) for x in ref] == [type(x) for x in got]
            assert all(math.copysign(1, a) == math.copysign(1, b) for a, b in zip(ref[:3], got[:3]))


@native
def test_compiled_sums_reject_what_is_not_a_memo_or_a_key():
    with pytest.raises(TypeError):
        _native.memoised_sums([], True, (1,) * 10)
    with pytest.raises(TypeError):
        _native.memoised_sums({}, True, (1, 2, 3))
    with pytest.raises(TypeError):
        _native.memoised_sums({}, True)
