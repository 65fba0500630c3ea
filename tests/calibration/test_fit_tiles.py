"""The prefill-attention tile fit on synthetic calibration CSVs whose times follow a known tile law."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.calibration.fit import fit
from simulator.calibration.fit_tiles import PARAMS, sms_of
from simulator.calibration.io import open_log
from simulator.catalog.gpu import Efficiency, TileModel
from simulator.catalog.gpus import load_gpu
from simulator.perf.tiles import AttentionCall, tile_time

from .synthetic import timed_row, write_meta

GPU = "h100-sxm"
#: away from the fit's start values (simulator/calibration/fit_tiles.py X0)
TRUE = TileModel(sms=132, launch_s=3e-6, tile_s=7e-6, tile_efficiency=0.22, pair_slowdown=1.8,
                 split_tile_s=8e-6, split_efficiency=0.2, combine_s=3e-6, tail=0.45)
HEADS = ((32, 8), (64, 8), (32, 32), (16, 2), (32, 4))


def shapes():
    """The calibration suite's prefill grid: plain causal prefill and chunks after a cached prefix."""
    for h, kvh in HEADS:
        for b in (1, 4, 16):
            for s in (128, 256, 512, 1024, 2048, 4096, 8192):
                if b * s <= 65536:
                    yield "prefill", b, h, kvh, s, 0
    for h, kvh in HEADS:
        for b in (1, 4):
            for c in (256, 512, 2048):
                for p in (0, 1024, 4096, 16384):
                    yield "chunked_prefill", b, h, kvh, c, p


def write(out, with_meta: bool, noise: float = 0.0) -> None:
    peak = load_gpu(GPU).peak_flops("bf16")
    log = open_log(out, "attention_prefill")
    rng = np.random.default_rng(7)
    for op, b, h, kvh, q, p in shapes():
        pairs = q * p + q * (q + 1) / 2
        kv = p + q
        t = tile_time(TRUE, peak, AttentionCall(b, h, b * q, b * kv, b * pairs, 128, 128)).seconds
        t *= 1.0 + noise * rng.standard_normal()
        log.append(timed_row(t, op=op, batch=b, q_heads=h, kv_heads=kvh, new_tokens=q, prefix=p, kv_len=kv,
                             causal_pairs=pairs, flops=4.0 * h * 128 * pairs * b,
                             bytes=2.0 * b * 128 * (2 * h * q + 2 * kvh * kv)))
    if with_meta:
        write_meta(out)


@pytest.fixture(scope="module")
def exact(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiles")
    write(out, with_meta=True)
    return fit(out, GPU)


def test_known_tile_law_is_recovered(exact):
    eff = Efficiency.model_validate(exact["efficiency"])
    assert "attention_prefill" not in eff.curves            # the tile model replaces the curve
    m = eff.attention_prefill_tiles
    assert m is not None and m.sms == 132
    for k in ("tile_s", "tile_efficiency", "pair_slowdown", "tail"):
        assert getattr(m, k) == pytest.approx(getattr(TRUE, k), rel=0.03), k
    assert m.launch_s == pytest.approx(TRUE.launch_s, abs=0.3e-6)
    rep = exact["report"]["attention_prefill"]
    assert rep["held_out"]["median_ape_pct"] < 0.5 and rep["held_out"]["p90_ape_pct"] < 1.5
    assert set(rep["params"]) == set(PARAMS)


def test_noisy_measurements_give_errors_near_the_noise(tmp_path):
    write(tmp_path, with_meta=True, noise=0.03)
    rep = fit(tmp_path, GPU)["report"]["attention_prefill"]
    # 3% Gaussian noise: median absolute error about 0.67 x 3% = 2%
    assert 1.0 < rep["held_out"]["median_ape_pct"] < 3.5
    assert rep["params"]["tile_efficiency"] == pytest.approx(TRUE.tile_efficiency, rel=0.05)


def test_without_sm_count_the_curve_is_fitted(tmp_path):
    write(tmp_path, with_meta=False)
    eff = fit(tmp_path, GPU)["efficiency"]
    assert "attention_prefill" in eff["curves"] and "attention_prefill_tiles" not in eff


def test_sms_of_meta():
    assert sms_of({"device": {"multiprocessors": 132}}) == 132
    assert sms_of({"device": {"name": "cpu"}}) is None
    assert sms_of({}) is None and sms_of({"device": {"multiprocessors": math.nan}}) is None
