"""What a step's time depends on: token counts and summed context lengths of its batch."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ..native import enabled, load


class BatchShape(NamedTuple):
    """What a step's time depends on. Sums run over the sequences of the batch. Build one with a named
    constructor: :meth:`prefill`, :meth:`decode` (equal sequences), :meth:`decode_total` (summed
    contexts), :meth:`chunks` (prefill chunks after their cached prefixes) or :meth:`mixed`.

    prefill: ``prefill_tokens`` new tokens from ``prefill_seqs`` sequences; ``prefill_pairs`` causal
    query-key pairs (c·p + c(c+1)/2 for a chunk of c tokens after a prefix of p); ``prefill_kv``
    KV entries read (p + c). decode: ``decode_seqs`` sequences with ``decode_ctx`` summed KV entries
    read; each sequence feeds ``decode_q`` tokens (1, or the k + 1 tokens a speculative verify step
    checks; every one of them needs logits). ``*_win`` are the same sums with each sequence's
    context capped at the sliding window (equal to the full sums for models without such layers).
    A tuple of these ten fields, in this order (the memo key of its price, :func:`cost_key`).
    """

    prefill_tokens: int = 0
    prefill_seqs: int = 0
    prefill_pairs: float = 0.0
    prefill_kv: float = 0.0
    decode_seqs: int = 0
    decode_ctx: float = 0.0
    prefill_pairs_win: float | None = None
    prefill_kv_win: float | None = None
    decode_ctx_win: float | None = None
    decode_q: int = 1

    @property
    def tokens(self) -> int:
        return self.prefill_tokens + self.decode_seqs * self.decode_q

    @property
    def seqs(self) -> int:
        return self.prefill_seqs + self.decode_seqs

    def key(self) -> tuple:
        """The ten fields as a plain tuple."""
        return tuple(self)

    @staticmethod
    def prefill(batch: int, seq: int, prefix: int = 0, window: int | None = None) -> "BatchShape":
        """``batch`` sequences each prefilling ``seq`` new tokens after ``prefix`` cached ones."""
        pairs = seq * prefix + seq * (seq + 1) / 2
        win = window_pairs(seq, prefix, window) if window else pairs
        kv_win = min(prefix + seq, window + seq) if window else prefix + seq
        return BatchShape(prefill_tokens=batch * seq, prefill_seqs=batch, prefill_pairs=batch * pairs,
                          prefill_kv=batch * (prefix + seq), prefill_pairs_win=batch * win,
                          prefill_kv_win=batch * kv_win)

    @staticmethod
    def decode(batch: int, context: int, window: int | None = None, q: int = 1) -> "BatchShape":
        """``batch`` sequences each feeding ``q`` tokens (1: plain decode) after ``context`` cached ones."""
        ctx = context + q  # the new tokens attend to themselves too
        win = min(ctx, window) if window else ctx
        return BatchShape(decode_seqs=batch, decode_ctx=batch * ctx, decode_ctx_win=batch * win, decode_q=q)

    @staticmethod
    def decode_total(seqs: int, ctx: float, ctx_win: float | None = None, q: int = 1) -> "BatchShape":
        """``seqs`` sequences each feeding ``q`` tokens, ``ctx`` (``ctx_win`` under a sliding window) KV
        entries read in all, the new tokens included."""
        return BatchShape(0, 0, 0.0, 0.0, seqs, ctx, None, None, ctx_win, q)

    @staticmethod
    def chunks(chunks: Iterable[tuple[int, int]], window: int | None = None) -> "BatchShape":
        """Prefill chunks, each ``(p, c)``: c new tokens after p cached ones; window sums only with a window."""
        return BatchShape.mixed(chunks, None, window)

    @staticmethod
    def mixed(chunks: Iterable[tuple[int, int]], decodes: "BatchShape | None" = None,
              window: int | None = None) -> "BatchShape":
        """One step of prefill ``chunks`` (each ``(p, c)``: c new tokens after p cached ones) and the
        decode part of ``decodes`` (a :meth:`decode_total` shape; None: no decodes)."""
        if decodes is None or not decodes.decode_seqs:
            return BatchShape.step(chunks, 0, 0.0, None, 1, window)
        return BatchShape.step(chunks, decodes.decode_seqs, decodes.decode_ctx, decodes.decode_ctx_win,
                               decodes.decode_q, window)

    @staticmethod
    def step(chunks: Iterable[tuple[int, int]], seqs: int, ctx: float, ctx_win: float | None, q: int,
             window: int | None) -> "BatchShape":
        """:meth:`mixed` of ``chunks`` and ``decode_total(seqs, ctx, ctx_win, q)`` (``seqs`` = 0: no
        decodes), without building the decode shape (the scheduler's call, once per step)."""
        pt = ps = 0
        pairs = kv = pairs_w = kv_w = 0.0
        for p, c in chunks:
            ps += 1
            pt += c
            pairs += c * p + c * (c + 1) / 2
            kv += p + c
            if window:
                pairs_w += window_pairs(c, p, window)
                kv_w += min(p + c, window + c)
        if not seqs:
            return BatchShape(pt, ps, float(pairs), float(kv), 0, 0.0, pairs_w if window else None,
                              kv_w if window else None, 0.0 if window else None, 1)
        return BatchShape(pt, ps, float(pairs), float(kv), seqs, ctx, pairs_w if window else None,
                          kv_w if window else None, ctx_win if window else None, q)

    def prefill_part(self) -> "BatchShape":
        """The prefill of this step alone, without window sums (what a draft model prefills)."""
        return BatchShape(self.prefill_tokens, self.prefill_seqs, self.prefill_pairs, self.prefill_kv)


def decode_pairs(seqs: float, ctx: float, q: int) -> float:
    """Query-key pairs of ``seqs`` sequences feeding ``q`` tokens each with ``ctx`` summed KV entries
    (cached + new): query j of q sees (cached + j) keys, so q·Σcached + seqs·q(q+1)/2."""
    if q == 1:
        return ctx
    return q * (ctx - seqs * q) + seqs * q * (q + 1) / 2


def window_pairs(c: int, p: int, w: int) -> float:
    """Query-key pairs of a causal chunk of c tokens after p, each query seeing at most w keys."""
    total = 0.0
    lo = p + 1          # query i (1..c) sees p + i keys, capped at w
    full = max(0, min(c, w - p))                   # queries below the cap
    total += full * lo + full * (full - 1) / 2 if full > 0 else 0.0
    total += (c - max(full, 0)) * w
    return total


def quantize(b: BatchShape) -> BatchShape:
    """The shape with its context sums rounded to 64 steps per octave (under 0.55% change),
    so that memoisation hits across steps whose contexts differ by a few tokens."""
    return BatchShape(*cost_key(b))


def quantize_value(v: float | None) -> float | None:
    """A context sum rounded as :func:`quantize` rounds it: 64 steps per octave (under 0.55%)."""
    if v is None or v <= 64:
        return v
    return _POW[round(_log2(v) * 64)]


def cost_key(shape: tuple) -> tuple:
    """The memo key of a step's price: the ten fields of ``shape`` (a :class:`BatchShape` or a plain tuple
    in its field order) with the context sums rounded by :func:`quantize_value` (the key of
    :func:`quantize` of that shape). Compiled twin: ``simulator/native/step_key.c``."""
    if len(shape) != 10:
        raise TypeError(f"cost_key takes a shape of 10 fields ({len(shape)} given)")
    pt, ps, pairs, kv, ds, ctx, pw, kw, cw, dq = shape
    q = quantize_value
    return (pt, ps, q(pairs), q(kv), ds, q(ctx), q(pw), q(kw), q(cw), dq)


_log2 = math.log2
_POW = [2.0 ** (e / 64) for e in range(64 * 64)]


_native = load("_step_key")


def cost_key_function() -> Callable[[tuple], tuple]:
    """:func:`cost_key`, compiled if built and not switched off by ``SERVESIM_NATIVE=0``."""
    return _native.cost_key if _native is not None and enabled() else cost_key
