"""Prefill attention time from FlashAttention-2's tiles and how they fill the SMs.

The forward kernel launches one CTA per (sequence, head, block of ``block_m`` query rows); a CTA
walks the keys its rows may see ``block_n`` at a time. Its time alone on an SM is

    w(k) = tile_s + 2 · block_m · k · (d_qk + d_v) / (tile_efficiency · peak / sms)

for ``k`` keys. Tiles are dealt to ``sms × ctas_per_sm`` slots in launch order; two CTAs on one SM
each run ``pair_slowdown`` times slower. The kernel then takes

    n ≤ sms:   launch_s + w_max                         (one CTA per SM: the longest tile)
    n > sms:   launch_s + φ · max(w_max, W / S + f · w_avg + κ · (w_max − w_min) · (1 − f))

with n tiles, W their summed work, S slots, φ = pair_slowdown, f = ceil(n/S) − n/S the empty part
of the last wave and κ = tail (a ragged end when tiles differ in length; greedy list scheduling
of causal tiles gives κ ≈ 0.6). When few query tiles face many keys, FlashAttention-2 splits the
keys over several CTAs (its ``num_splits_heuristic``, reproduced below) and adds a combine kernel.

Only per-sequence means are known to the step model (tokens, sequences, query-key pairs, keys), so
a step is priced as ``seqs`` equal sequences; :func:`tile_blocks` reads the mask from the pairs
(full, causal after a prefix, or sliding window) and counts each tile's key blocks.

Decode attention (:func:`decode_tile_time`) uses the same split heuristic: one CTA per (sequence,
KV head), each streaming its keys and values, the call bounded by a per-CTA rate and a share of the
memory bandwidth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from ..catalog.gpu import DecodeTileModel, TileModel

#: FlashAttention-2 ``num_splits_heuristic``: no split above 0.8 waves of CTAs, at most 128 splits,
#: the fewest splits whose wave efficiency is within 85% of the best.
SPLIT_MIN_WAVES, SPLIT_MAX, SPLIT_KEEP = 0.8, 128, 0.85
#: Relative slack when reading the mask from the pairs (the step model rounds pairs and keys by < 0.55%).
MASK_TOL = 0.02


@dataclass(frozen=True)
class TileTime:
    """Seconds of one prefill-attention call on one GPU, its kernels and its CTA count."""

    seconds: float
    kernels: int
    tiles: int
    splits: int


def num_splits(tiles: int, slots: int, key_blocks: int, min_blocks: int = 1) -> int:
    """FlashAttention-2's split-KV count for ``tiles`` CTAs of 64 rows, ``slots`` (= 2 × SMs) and
    ``key_blocks`` blocks of 128 keys (``num_splits_heuristic`` in flash_api.cpp). FlashAttention-3's
    (hopper/heuristics.h) is the same rule with slots = SMs and no split below ``min_blocks`` = 5; it
    also counts splits that leave the blocks per split unchanged, which this function skips for both
    (the count then differs by one or two where few CTAs face many blocks)."""
    if tiles >= SPLIT_MIN_WAVES * slots or key_blocks < min_blocks:
        return 1
    top = min(SPLIT_MAX, slots, key_blocks)
    eligible = [s for s in range(1, top + 1) if s == 1 or -(-key_blocks // s) != -(-key_blocks // (s - 1))]
    eff = {s: (tiles * s / slots) / math.ceil(tiles * s / slots) for s in eligible}
    best = max(eff.values(), default=0.0)
    return next((s for s in eligible if eff[s] >= SPLIT_KEEP * best), 1)


def tile_blocks(q: float, kv: float, pairs: float, block_m: int, block_n: int) -> tuple[int, float, int, int]:
    """(query tiles, key blocks summed over them, blocks of the first tile, blocks of the last) for
    one sequence of ``q`` queries, ``kv`` keys and ``pairs`` query-key pairs.

    Every query sees every key (pairs = q · kv): each tile walks all blocks. Causal with a prefix
    (pairs >= the causal count of q queries after kv − q keys, within :data:`MASK_TOL`): tile i sees
    p + (i + 1) · block_m keys (at most kv), p = pairs / q − (q + 1) / 2, rounded up to whole blocks.
    Fewer pairs (sliding window): each tile sees its rows' mean keys plus its own height.
    """
    m = max(math.ceil(q / block_m), 1)
    full, causal = q * kv, q * (kv - q) + q * (q + 1) / 2
    if pairs >= full * (1 - MASK_TOL) and abs(pairs - full) < abs(pairs - causal):
        b = math.ceil(kv / block_n)
        return m, float(m * b), b, b
    if pairs >= causal * (1 - MASK_TOL):
        p = min(max(pairs / q - (q + 1) / 2, 0.0), kv)
        last = math.ceil(min(kv, p + m * block_m) / block_n)
        if block_m % block_n == 0:          # ceil(p / bn + integer): a closed form
            r = block_m // block_n
            first = math.ceil(p / block_n) + r if m > 1 else last
            total = (m - 1) * math.ceil(p / block_n) + r * (m - 1) * m / 2 + last
        else:
            blocks = [math.ceil(min(kv, p + (i + 1) * block_m) / block_n) for i in range(m)]
            first, total = blocks[0], float(sum(blocks))
        return m, float(total), first, last
    b = math.ceil(min(kv, pairs / q + block_m) / block_n)
    return m, float(m * b), b, b


class AttentionCall(NamedTuple):
    """One prefill-attention call on one GPU: ``seqs`` sequences with ``q`` query tokens, ``kv`` keys
    and ``pairs`` query-key pairs summed over them, ``heads`` query heads, head dimensions
    ``d_qk`` (queries and keys) and ``d_v`` (values)."""

    seqs: float
    heads: int
    q: float
    kv: float
    pairs: float
    d_qk: int
    d_v: int


def tile_time(m: TileModel, peak_flops: float, call: AttentionCall) -> TileTime:
    """Prefill attention ``call`` on one GPU of ``peak_flops`` (bf16 dense)."""
    seqs, heads, q, kv, pairs, d_qk, d_v = call
    seqs = max(seqs, 1.0)
    qs, kvs, ps = max(q / seqs, 1.0), max(kv / seqs, 1.0), max(pairs / seqs, 1.0)
    kvs = max(kvs, qs)
    mult = max(round(seqs * heads), 1)
    per_key = 2.0 * (d_qk + d_v) / (peak_flops / m.sms)      # seconds per query-key pair at 100% of one SM
    slots = m.sms * m.ctas_per_sm
    splits = num_splits(mult * math.ceil(qs / 64), 2 * m.sms, math.ceil(kvs / 128))
    if splits == 1:
        fixed, per_block = m.tile_s, per_key * m.block_m * m.block_n / m.tile_efficiency
        per_seq, total, first, last = tile_blocks(qs, kvs, ps, m.block_m, m.block_n)
        w_max, w_min = fixed + per_block * last, fixed + per_block * first
        w_sum = per_seq * fixed + per_block * total
        extra, kernels = 0.0, 1
    else:                                   # each row tile's key blocks dealt to `splits` CTAs
        fixed = m.split_tile_s
        per_block = per_key * m.split_block_m * m.split_block_n / m.split_efficiency
        rows, total, first, last = tile_blocks(qs, kvs, ps, m.split_block_m, m.split_block_n)
        chunk = math.ceil(math.ceil(kvs / m.split_block_n) / splits)     # blocks per split
        per_seq = rows * splits
        w_max = fixed + per_block * min(chunk, last)
        w_min = fixed + per_block * max(0, first - (splits - 1) * chunk)  # the first tile's last split
        w_sum = per_seq * fixed + per_block * total
        extra, kernels = m.combine_s, 2
    n = mult * per_seq
    if n <= m.sms:
        body = w_max
    else:
        work = mult * w_sum
        frac = math.ceil(n / slots) - n / slots
        body = m.pair_slowdown * max(w_max, work / slots + frac * work / n
                                     + m.tail * (w_max - w_min) * (1.0 - frac))
    return TileTime(m.launch_s + body + extra, kernels, n, splits)


def decode_tile_time(m: DecodeTileModel, bandwidth: float, nbytes: float, streams: float, kv: float) -> TileTime:
    """Decode attention (one new token per sequence) moving ``nbytes`` in all over ``streams`` =
    sequences × KV heads on one GPU, ``kv`` keys per sequence, on a GPU of ``bandwidth`` bytes/s.

    n0 = streams CTAs (FlashAttention-2, FA3 and XQA put a KV head's query group in one CTA), split s
    ways by :func:`num_splits` over ceil(kv / block_n) key blocks (the model's ``split_slots_per_sm``
    and ``split_min_blocks`` say whose heuristic); each of the n = n0 · s CTAs streams
    b = nbytes / n0 · min(ceil(blocks / s) · block_n, kv) / kv bytes. With S = sms · ctas_per_sm slots:

        t = launch_s + max(1, n / S) · tile_s + max(b / (rate · bandwidth / sms),
                                                   nbytes / (bandwidth_efficiency · bandwidth))
            [+ combine_s + combine_split_s · s when s > 1]
    """
    n0 = max(round(streams), 1)
    kv = max(kv, 1.0)
    blocks = math.ceil(kv / m.block_n)
    splits = num_splits(n0, m.split_slots_per_sm * m.sms, blocks, m.split_min_blocks)
    if splits == 1:
        fixed, rate, eff, extra = m.tile_s, m.tile_rate, m.bandwidth_efficiency, 0.0
    else:
        fixed, rate, eff = m.split_tile_s, m.split_rate, m.split_bandwidth_efficiency
        extra = m.combine_s + m.combine_split_s * splits
    per_cta = nbytes / n0 * min(math.ceil(blocks / splits) * m.block_n, kv) / kv
    n = n0 * splits
    waves = max(1.0, n / (m.sms * m.ctas_per_sm))
    body = waves * fixed + max(per_cta / (rate * bandwidth / m.sms), nbytes / (eff * bandwidth))
    return TileTime(m.launch_s + body + extra, 2 if splits > 1 else 1, n, splits)
