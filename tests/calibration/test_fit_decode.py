"""The decode-attention tile fit: on synthetic CSVs from a known tile law, and against the measured
H100 / H200 decode runs (split-KV choice vs the profiled kernel counts, the committed profiles)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from simulator.calibration.fit import fit, measured_s
from simulator.calibration.fit_decode import PARAMS
from simulator.calibration.io import as_float, open_log, read_rows
from simulator.catalog.gpu import DecodeTileModel, Efficiency
from simulator.catalog.gpus import load_gpu
from simulator.perf.roofline import decode_attention_time
from simulator.perf.tiles import decode_tile_time, num_splits

from .synthetic import timed_row, write_meta

GPU = "h100-sxm"
DATA = Path(__file__).resolve().parents[2] / "calibration" / "data"
#: away from the fit's start values (simulator/calibration/fit_decode.py X0)
TRUE = DecodeTileModel(sms=132, launch_s=3e-6, tile_s=4e-6, tile_rate=1.2, bandwidth_efficiency=0.7,
                       split_tile_s=5e-6, split_rate=2.5, split_bandwidth_efficiency=0.85, combine_s=1.5e-6,
                       combine_split_s=0.15e-6)
HEADS = ((32, 8), (64, 8), (32, 32), (16, 2), (32, 4))


def write(out: Path, with_meta: bool, noise: float = 0.0) -> None:
    """The calibration suite's decode grid (KV cache <= 8 GiB), timed by ``TRUE``."""
    bw = load_gpu(GPU).memory_bandwidth
    log = open_log(out, "attention_decode")
    rng = np.random.default_rng(11)
    for h, kvh in HEADS:
        for b in (1, 8, 32, 64, 128, 256):
            for L in (128, 512, 1024, 2048, 4096, 8192, 16384, 32768):
                if b * L * kvh * 512 > 8 * 2**30:
                    continue
                nbytes = 2.0 * b * 128 * (2 * kvh * L + 2 * h)
                t = decode_tile_time(TRUE, bw, nbytes, b * kvh, L).seconds * (1.0 + noise * rng.standard_normal())
                log.append(timed_row(t, op="decode", batch=b, q_heads=h, kv_heads=kvh, kv_len=L,
                                     flops=4.0 * h * 128 * L * b, bytes=nbytes))
    if with_meta:
        write_meta(out)


@pytest.fixture(scope="module")
def exact(tmp_path_factory):
    out = tmp_path_factory.mktemp("decode_tiles")
    write(out, with_meta=True)
    return fit(out, GPU, decode_feature="batch_kv_heads")


def test_known_decode_tile_law_is_recovered(exact):
    eff = Efficiency.model_validate(exact["efficiency"])
    m = eff.attention_decode_tiles
    assert m is not None and m.sms == 132
    for k in ("tile_s", "tile_rate", "bandwidth_efficiency", "split_bandwidth_efficiency", "combine_split_s"):
        assert getattr(m, k) == pytest.approx(getattr(TRUE, k), rel=0.03), k
    rep = exact["report"]["attention_decode"]
    assert rep["held_out"]["median_ape_pct"] < 0.5 and rep["held_out"]["p90_ape_pct"] < 1.5
    assert set(rep["params"]) == set(PARAMS)
    # the curve is still fitted (transferred profiles read it) and reported apart
    assert "attention_decode" in eff.curves and "attention_decode_curve" in exact["report"]


def test_noisy_decode_measurements_give_errors_near_the_noise(tmp_path):
    write(tmp_path, with_meta=True, noise=0.03)
    rep = fit(tmp_path, GPU, decode_feature="batch_kv_heads")["report"]["attention_decode"]
    # 3% Gaussian noise: median absolute error about 0.67 x 3% = 2%
    assert 1.0 < rep["held_out"]["median_ape_pct"] < 3.5
    assert rep["params"]["bandwidth_efficiency"] == pytest.approx(TRUE.bandwidth_efficiency, rel=0.05)


def test_without_sm_count_only_the_decode_curve_is_fitted(tmp_path):
    write(tmp_path, with_meta=False)
    res = fit(tmp_path, GPU, decode_feature="batch_kv_heads")
    assert "attention_decode" in res["efficiency"]["curves"] and "attention_decode_tiles" not in res["efficiency"]
    assert "attention_decode_curve" not in res["report"]


@pytest.mark.parametrize("gpu", ["h100-sxm", "h200-sxm"])
def test_split_choice_matches_the_profiled_kernel_counts(gpu):
    # FlashAttention-2 folds a KV group's query heads into one CTA: batch x KV heads CTAs; the
    # heuristic splits exactly the calls the profiler saw run two kernels (split + combine)
    rows = [r for r in read_rows(DATA / gpu / "attention_decode.csv") if r["kernels_per_call"]]
    assert len(rows) > 50
    for r in rows:
        ctas = int(as_float(r["batch"]) * as_float(r["kv_heads"]))
        split = num_splits(ctas, 2 * 132, math.ceil(as_float(r["kv_len"]) / 128)) > 1
        assert split == (r["kernels_per_call"] == "2"), r


def test_committed_h200_profile_places_the_split_kv_step():
    # 128 KV streams at 32768 keys (16/2 heads, batch 64) split and read the cache at ~4.5 TB/s;
    # 256 streams (32/8, batch 32) do not and take ~3.2x as long for 2x the bytes
    gpu = load_gpu("h200-sxm")
    assert gpu.efficiency.attention_decode_tiles is not None
    rows = {(r["batch"], r["q_heads"], r["kv_heads"], r["kv_len"]): r
            for r in read_rows(DATA / "h200-sxm" / "attention_decode.csv")}
    pred, meas = [], []
    for key in (("64", "16", "2", "32768"), ("32", "32", "8", "32768")):
        r = rows[key]
        t, _ = decode_attention_time(gpu, as_float(r["flops"]), as_float(r["bytes"]), "bf16",
                                     as_float(r["batch"]) * as_float(r["kv_heads"]), as_float(r["kv_len"]))
        pred.append(t.seconds)
        meas.append(measured_s(r))
        assert t.seconds == pytest.approx(measured_s(r), rel=0.15), key      # the held-out p90 target
    assert meas[1] / meas[0] == pytest.approx(3.17, rel=0.01)                 # 1516 us / 479 us
    assert pred[1] / pred[0] == pytest.approx(meas[1] / meas[0], rel=0.15)


def test_the_fit_chooses_the_geometry_that_generated_the_rows(tmp_path: Path) -> None:
    """Rows timed by FlashAttention-3's geometry (one CTA per SM, its split rule): offered both
    families, the fit takes fa3 and recovers the law; offered FA2's only, it keeps fa2."""
    global TRUE
    saved = TRUE
    TRUE = saved.model_copy(update={"ctas_per_sm": 1, "split_slots_per_sm": 1, "split_min_blocks": 5})
    try:
        write(tmp_path, with_meta=True)
    finally:
        TRUE = saved
    both = fit(tmp_path, GPU, decode_feature="batch_kv_heads", decode_families=("fa2", "fa3"))
    assert both["report"]["attention_decode"]["family"] == "fa3"
    m = Efficiency.model_validate(both["efficiency"]).attention_decode_tiles
    assert (m.ctas_per_sm, m.split_slots_per_sm, m.split_min_blocks) == (1, 1, 5)
    assert m.tile_s == pytest.approx(4e-6, rel=0.03)
    assert both["report"]["attention_decode"]["held_out"]["median_ape_pct"] < 1.0
    assert fit(tmp_path, GPU, decode_feature="batch_kv_heads")["report"]["attention_decode"]["family"] == "fa2"
