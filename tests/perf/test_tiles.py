"""The FlashAttention-2 tile model of prefill attention (simulator/perf/tiles.py), checked by hand
and against an explicit greedy list scheduler of the kernel's grid."""
from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from simulator.catalog.gpu import DecodeTileModel, TileModel
from simulator.perf.tiles import AttentionCall, decode_tile_time, num_splits, tile_blocks, tile_time

PEAK = 132e12             # 1e12 FLOP/s per SM on a 132-SM GPU: round numbers by hand
MODEL = TileModel(sms=132, launch_s=2e-6, tile_s=5e-6, tile_efficiency=0.5, pair_slowdown=1.5,
                  split_tile_s=6e-6, split_efficiency=0.4, combine_s=1e-6, tail=0.6)
#: seconds per key of a 128-row tile at head dim 128: 2 * (128 + 128) FLOPs per pair * 128 rows / (1e12 * 0.5)
PER_KEY = 2 * 256 * 128 / (1e12 * 0.5)


def causal(q: int, p: int = 0) -> float:
    return q * p + q * (q + 1) / 2


def test_num_splits_reproduces_flash_attention_heuristic():
    # >= 0.8 waves of 264 slots: never split
    assert num_splits(256, 264, 130) == 1
    # one key block: nothing to split
    assert num_splits(64, 264, 1) == 1
    # 128 tiles, 4 key blocks: 2 splits fill 256/264 = 0.97 of a wave (1 split: 0.48)
    assert num_splits(128, 264, 4) == 2
    # 64 tiles, 130 key blocks: 4 splits reach 256/264 = 0.97 >= 0.85 x the best (1.0 at 33 splits)
    assert num_splits(64, 264, 130) == 4


def test_one_tile_is_launch_plus_tile_plus_its_keys():
    # one sequence, one head, 128 causal queries: one CTA alone on an SM, 128 keys
    t = tile_time(MODEL, PEAK, AttentionCall(1, 1, 128, 128, causal(128), 128, 128))
    assert t.tiles == 1 and t.splits == 1 and t.kernels == 1
    assert t.seconds == pytest.approx(2e-6 + 5e-6 + PER_KEY * 128)


@pytest.mark.parametrize("heads", [528, 400, 300])
def test_equal_tiles_take_whole_waves(heads):
    # full mask (pairs = q * kv): every tile sees all 256 keys, so the last wave costs a whole tile:
    # ceil(n / 264) waves of pair_slowdown x w
    w = 5e-6 + PER_KEY * 256
    t = tile_time(MODEL, PEAK, AttentionCall(1, heads, 128, 256, 128 * 256, 128, 128))
    assert t.tiles == heads
    assert t.seconds == pytest.approx(2e-6 + 1.5 * math.ceil(heads / 264) * w)


def test_few_tiles_with_many_keys_split_and_add_a_combine_kernel():
    # 16 heads x 256 queries after 16384 cached keys: 64 tiles of 64 rows, 130 blocks of 128 keys -> 4 splits
    q, p, kv = 256, 16384, 16640
    t = tile_time(MODEL, PEAK, AttentionCall(1, 16, q, kv, causal(q, p), 128, 128))
    assert (t.splits, t.kernels, t.tiles) == (4, 2, 16 * 4 * 4)
    per_block = 2 * 256 * 64 * 128 / (1e12 * 0.4)       # a 64-row CTA over 128 keys at split_efficiency
    # row tiles see 16384 + 64, +128, +192, +256 keys: 129, 129, 130, 130 blocks of 128 (518 in all)
    chunk = math.ceil(130 / 4)                           # blocks per split: 33
    w_max = 6e-6 + per_block * chunk
    w_min = 6e-6 + per_block * (129 - 3 * chunk)         # the first row tile's last split: 30 blocks
    work = 16 * (16 * 6e-6 + per_block * 518)            # 16 heads x (16 CTAs' fixed time + all blocks)
    f = 1 - 256 / 264                                    # the empty part of the one wave
    body = 1.5 * max(w_max, work / 264 + f * work / 256 + 0.6 * (w_max - w_min) * (1 - f))
    assert t.seconds == pytest.approx(2e-6 + body + 1e-6)


def greedy_seconds(m: TileModel, seqs: int, heads: int, q: int, p: int) -> float:
    """The kernel's grid (m-blocks fastest, then sequences, then heads) dealt in order to 2 x SMs slots."""
    kv = p + q
    rate = 2 * 256 * m.block_m / (PEAK / m.sms * m.tile_efficiency)
    w = [m.tile_s + rate * m.block_n * math.ceil(min(kv, p + (i + 1) * m.block_m) / m.block_n)
         for i in range(math.ceil(q / m.block_m))]
    works = w * (seqs * heads)
    if len(works) <= m.sms:
        return m.launch_s + max(works)
    slots = [0.0] * (m.sms * m.ctas_per_sm)
    for x in works:
        heapq.heappush(slots, heapq.heappop(slots) + m.pair_slowdown * x)
    return m.launch_s + max(slots)


def test_closed_form_follows_greedy_scheduling_of_the_grid():
    rng = np.random.default_rng(1)
    errs = []
    while len(errs) < 60:
        seqs, heads = int(rng.choice([1, 2, 4, 8, 16])), int(rng.choice([8, 16, 32, 64]))
        q, p = int(2 ** rng.uniform(7, 13)), int(rng.choice([0, 0, 2 ** rng.uniform(8, 14)]))
        if num_splits(seqs * heads * math.ceil(q / 64), 264, math.ceil((p + q) / 128)) > 1:
            continue
        if seqs * heads * math.ceil(q / 128) > 20000:
            continue
        t = tile_time(MODEL, PEAK, AttentionCall(seqs, heads, seqs * q, seqs * (p + q), seqs * causal(q, p), 128, 128))
        errs.append(abs(t.seconds / greedy_seconds(MODEL, seqs, heads, q, p) - 1))
    assert np.median(errs) < 0.05 and max(errs) < 0.25


def test_more_sequences_never_take_less_time():
    ts = [tile_time(MODEL, PEAK, AttentionCall(s, 32, s * 1024, s * 1024, s * causal(1024), 128, 128)).seconds for s in (1, 2, 4, 8, 16)]
    assert ts == sorted(ts)


def test_tile_blocks_read_the_mask_from_the_pairs():
    # causal, no prefix, 1024 queries: tiles of 128 rows see 128, 256, ..., 1024 keys = 2, 4, ..., 16 blocks
    assert tile_blocks(1024, 1024, causal(1024), 128, 64) == (8, 72.0, 2, 16)
    # causal, 200 queries after 1000 keys: tiles see 1128 and 1200 keys -> 18 and 19 blocks of 64
    assert tile_blocks(200, 1200, causal(200, 1000), 128, 64) == (2, 37.0, 18, 19)
    # every query sees every key: 3 tiles x ceil(1000 / 64) = 16 blocks
    assert tile_blocks(300, 1000, 300 * 1000, 128, 64) == (3, 48.0, 16, 16)
    # sliding window of 512 over 4096 queries: each tile sees ~512 + 128 keys = 10 blocks
    win = sum(min(512, i + 1) for i in range(4096))
    assert tile_blocks(4096, 4096, win, 128, 64) == (32, 320.0, 10, 10)
    # rows of the split kernel (64 rows, 128-key blocks) counted one by one: 129, 129, 130, 130
    assert tile_blocks(256, 16640, causal(256, 16384), 64, 128) == (4, 518.0, 129, 130)


# ---- decode attention: FlashAttention-2 decode CTAs streaming the KV cache (tiles.decode_tile_time) ----

BW = 1.32e12              # bytes/s: 1e10 per SM on 132 SMs
DEC = DecodeTileModel(sms=132, launch_s=2e-6, tile_s=3e-6, tile_rate=1.0, bandwidth_efficiency=0.5,
                      split_tile_s=4e-6, split_rate=2.0, split_bandwidth_efficiency=0.8, combine_s=1e-6,
                      combine_split_s=0.1e-6)
KV_BYTES = 2 * 128 * 2    # one key and one value of head dim 128 in bf16, per KV head


def test_decode_enough_ctas_run_one_pass_at_the_bandwidth_share():
    # 256 streams >= 0.8 x 264 slots: no split, one wave; 4096 keys each
    nbytes = 256 * 4096 * KV_BYTES                           # 536,870,912 B
    t = decode_tile_time(DEC, BW, nbytes, 256, 4096)
    assert (t.splits, t.kernels, t.tiles) == (1, 1, 256)
    # per CTA: 2,097,152 B at 1e10 B/s = 209.7 us < the whole call at 0.5 x 1.32e12 = 406.7 us
    assert t.seconds == pytest.approx(2e-6 + 3e-6 + nbytes / 0.66e12)


def test_decode_more_ctas_than_slots_pay_the_fixed_time_per_wave():
    nbytes = 1056 * 1024 * KV_BYTES
    t = decode_tile_time(DEC, BW, nbytes, 1056, 1024)        # 1056 = 4 x 264 CTAs: 4 waves
    assert t.seconds == pytest.approx(2e-6 + 4 * 3e-6 + nbytes / 0.66e12)


def test_decode_one_short_stream_is_bound_by_one_cta():
    # one stream, 128 keys: one block, nothing to split; 65,536 B at one CTA's 1e10 B/s
    t = decode_tile_time(DEC, BW, 128 * KV_BYTES, 1, 128)
    assert (t.splits, t.kernels) == (1, 1)
    assert t.seconds == pytest.approx(2e-6 + 3e-6 + 65536 / 1e10)


def test_decode_few_streams_split_the_keys_and_add_a_combine_kernel():
    # 8 streams x 16384 keys = 128 blocks: splits 32 fill 256 / 264 slots (26 would give 0.79 < 0.85 x 0.97)
    assert num_splits(8, 264, 128) == 32
    nbytes = 8 * 16384 * KV_BYTES                            # 67,108,864 B
    t = decode_tile_time(DEC, BW, nbytes, 8, 16384)
    assert (t.splits, t.kernels, t.tiles) == (32, 2, 256)
    # per CTA 4 blocks = 512 keys = 262,144 B at 2e10 B/s = 13.1 us < the call at 0.8 x 1.32e12 = 63.6 us
    assert t.seconds == pytest.approx(2e-6 + 4e-6 + nbytes / (0.8 * BW) + 1e-6 + 32 * 0.1e-6)


def test_decode_split_cta_holds_whole_blocks():
    # 2 streams x 300 keys = 3 blocks -> 3 splits (2 x 3 = 6 CTAs); each CTA one block of 128 keys
    assert num_splits(2, 264, 3) == 3
    nbytes = 2 * 300 * KV_BYTES
    t = decode_tile_time(DEC, BW, nbytes, 2, 300)
    per_cta = nbytes / 2 * 128 / 300
    assert t.seconds == pytest.approx(2e-6 + 4e-6 + per_cta / 2e10 + 1e-6 + 3 * 0.1e-6)


def test_fa3_split_rule_needs_five_key_blocks_and_counts_one_slot_per_sm() -> None:
    # 8 CTAs, 4 key blocks: FA2 (264 slots) splits 4 ways (32 CTAs, 0.12 waves, the best of 1..4);
    # FA3 never splits at 4 blocks or fewer
    assert num_splits(8, 264, 4) == 4
    assert num_splits(8, 132, 4, min_blocks=5) == 1
    # 8 CTAs, 40 key blocks, 132 slots, counting only splits that change the blocks per split (FA2's
    # filter, kept): s = 14 (3 blocks each) reaches 112/132 = 0.848, the best of them (s = 20: 0.606,
    # s = 40: 2.42 waves / 3 = 0.808); the fewest within 85% of it is 14 itself
    assert num_splits(8, 132, 40, min_blocks=5) == 14
    # 0.8 x 132 = 105.6 CTAs or more: no split, whatever the keys
    assert num_splits(106, 132, 1000, min_blocks=5) == 1
    assert num_splits(105, 132, 1000, min_blocks=5) > 1


def test_decode_geometry_fields_change_only_the_split_choice() -> None:
    """One CTA per SM and FA3's split rule: 4 streams of 512 keys (4 blocks) stay whole, so the call is
    launch + tile_s + max(per-CTA bytes / (rate x bw / sms), bytes / (eff x bw)), by hand."""
    m = DecodeTileModel(sms=132, ctas_per_sm=1, split_slots_per_sm=1, split_min_blocks=5, launch_s=2e-6,
                        tile_s=3e-6, tile_rate=1.0, bandwidth_efficiency=0.8, split_tile_s=1e-6, split_rate=2.0,
                        split_bandwidth_efficiency=0.9, combine_s=1e-6, combine_split_s=1e-7)
    bw, nbytes = 3.35e12, 4 * 512 * 2 * 128 * 2.0        # 4 streams x 512 keys x K and V x d 128 x 2 bytes
    t = decode_tile_time(m, bw, nbytes, 4, 512)
    per_cta = nbytes / 4 / (1.0 * bw / 132)             # 131,072 B at 25.4 GB/s: 5.16 us
    assert t.splits == 1 and t.kernels == 1
    assert t.seconds == pytest.approx(2e-6 + 3e-6 + max(per_cta, nbytes / (0.8 * bw)))
    fa2 = m.model_copy(update={"ctas_per_sm": 2, "split_slots_per_sm": 2, "split_min_blocks": 1})
    assert decode_tile_time(fa2, bw, nbytes, 4, 512).splits == 4    # FA2 splits the same call
