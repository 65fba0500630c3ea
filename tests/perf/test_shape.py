"""The memo key of a step's price: the compiled key function against the reference, and both
against :func:`quantize` of the shape."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.perf.shape import (BatchShape, _native, cost_key, cost_key_function, quantize, quantize_value,
                                  window_pairs)

native = pytest.mark.skipif(_native is None, reason="C extension not built (no compiler at install)")

sums = st.one_of(st.none(), st.integers(-5, 10**12), st.floats(-10.0, 1e15, allow_nan=False),
                 st.sampled_from([64, 64.0, 64.0000001, 2.0 ** (1 / 128), 2.0 ** (6 + 1 / 128), 1e6, 2.0 ** 40]))
counts = st.integers(0, 10_000)


@given(counts, counts, sums, sums, counts, sums, sums, sums, sums, st.integers(1, 8))
def test_the_key_is_the_quantized_shapes_key(pt, ps, pairs, kv, ds, ctx, pw, kw, cw, q):
    pairs, kv, ctx = (0.0 if v is None else v for v in (pairs, kv, ctx))
    b = BatchShape(pt, ps, pairs, kv, ds, ctx, pw, kw, cw, q)
    assert cost_key(b) == cost_key(tuple(b)) == quantize(b).key()


@native
@given(counts, counts, sums, sums, counts, sums, sums, sums, sums, st.integers(1, 8))
def test_compiled_key_equals_the_reference(pt, ps, pairs, kv, ds, ctx, pw, kw, cw, q):
    args = (pt, ps, pairs, kv, ds, ctx, pw, kw, cw, q)
    ref, got = cost_key(args), _native.cost_key(args)
    assert _native.cost_key(BatchShape(*args)) == ref
    assert ref == got
    assert [type(x) for x in ref] == [type(x) for x in got]   # equal keys of equal types: same dict slot


@native
def test_compiled_key_rejects_what_the_reference_rejects():
    with pytest.raises(ValueError):
        quantize_value(math.nan)
    with pytest.raises(ValueError):
        _native.cost_key((1, 1, math.nan, 1.0, 0, 0.0, None, None, None, 1))
    for key in (cost_key, _native.cost_key):
        with pytest.raises(TypeError):
            key((1, 2, 3))                  # a shape has ten fields
    with pytest.raises(TypeError):
        _native.cost_key([1] * 10)          # a tuple (or BatchShape), as the engine passes
    with pytest.raises(TypeError):
        _native.cost_key(1, 2, 3)


def test_the_engine_uses_the_reference_when_switched_off(monkeypatch):
    monkeypatch.setenv("SERVESIM_NATIVE", "0")
    assert cost_key_function() is cost_key


def test_named_constructors_agree_with_the_fields_they_sum():
    """A chunk of c tokens after p cached ones has c·p + c(c+1)/2 causal pairs and reads p + c entries;
    two chunks sum; one chunk per sequence of equal chunks is ``prefill``; a mixed step adds the decodes."""
    one = BatchShape.chunks([(100, 28)])
    assert one == BatchShape.prefill(1, 28, prefix=100)[:6] + (None, None, None, 1)
    two = BatchShape.chunks([(100, 28), (0, 4)])
    assert (two.prefill_tokens, two.prefill_seqs) == (32, 2)
    assert two.prefill_pairs == 28 * 100 + 28 * 29 / 2 + 4 * 5 / 2 and two.prefill_kv == 132.0
    win = BatchShape.chunks([(100, 28)], window=64)   # each query sees at most 64 keys
    assert win.prefill_pairs_win == 28 * 64 and win.prefill_kv_win == 64 + 28
    dec = BatchShape.decode_total(3, 300.0, None, 2)
    assert dec == BatchShape(decode_seqs=3, decode_ctx=300.0, decode_q=2)
    mixed = BatchShape.mixed([(100, 28)], dec)
    assert mixed[:4] == one[:4] and mixed[4:] == (3, 300.0, None, None, None, 2)
    assert mixed.tokens == 28 + 3 * 2 and mixed.prefill_part() == BatchShape(28, 1, one.prefill_pairs, 128.0)
    assert BatchShape.mixed([], None) == BatchShape()


@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 2048)), max_size=6), st.integers(0, 300),
       st.floats(0.0, 1e7), st.integers(1, 5), st.sampled_from([None, 0, 64, 4096]))
def test_step_is_mixed_with_its_decode_shape(chunks, n, ctx, q, window):
    """The scheduler's one-call step shape: the chunks' sums in chunk order (the memo key's floats to
    the bit), the decode fields as ``mixed`` takes them from a ``decode_total`` shape (none: zero
    sequences, q = 1), window sums only with a window."""
    ctx_w = ctx / 2 if window else None
    got = BatchShape.step(chunks, n, ctx, ctx_w, q, window)
    pairs = kv = pairs_w = kv_w = 0.0
    for p, c in chunks:
        pairs, kv = pairs + (c * p + c * (c + 1) / 2), kv + (p + c)
        if window:
            pairs_w, kv_w = pairs_w + window_pairs(c, p, window), kv_w + min(p + c, window + c)
    w = (pairs_w, kv_w) if window else (None, None)
    decode = (n, ctx, *w, ctx_w, q) if n else (0, 0.0, *w, 0.0 if window else None, 1)
    assert got == (sum(c for _, c in chunks), len(chunks), pairs, kv, *decode)
    assert [type(x) for x in got] == [type(x) for x in (0, 0, 0.0, 0.0) + decode]
    dec = BatchShape.decode_total(n, ctx, ctx_w, q) if n else None
    assert BatchShape.mixed(chunks, dec, window) == got
