"""The throughput-interactivity view: axes computed by hand, the front, the SLO line."""
from __future__ import annotations

import pytest

from simulator.planning.interactivity import interactivity_points, slo_tokens_per_user


def _row(name, gpus, tpot):
    return {"candidate": name, "deployment": {"gpu": "h100-sxm"}, "gpus": gpus, "tpot_p99": tpot}


RES = {"model": "m", "target_rate": 4.0, "mean_output_tokens": 500.0, "slo": {"ttft_s": 2.0, "tpot_s": 0.05},
       "plans": [_row("a", 2, 0.040), _row("b", 4, 0.020), _row("c", 4, 0.045), _row("d", 8, 0.010)]}


def test_axes_by_hand():
    pts = {p["candidate"]: p for p in interactivity_points(RES)}
    assert pts["a"]["tokens_per_s_per_gpu"] == pytest.approx(4 * 500 / 2)      # 1000 tok/s/GPU
    assert pts["a"]["tokens_per_s_per_user"] == pytest.approx(25.0)           # 1 / 0.040 s
    assert pts["d"]["tokens_per_s_per_gpu"] == pytest.approx(250.0)
    assert pts["d"]["tokens_per_s_per_user"] == pytest.approx(100.0)


def test_front_drops_dominated_plans():
    on = {p["candidate"] for p in interactivity_points(RES) if p["on_front"]}
    assert on == {"a", "b", "d"}          # c: same GPUs as b, slower per user


def test_slo_line():
    assert slo_tokens_per_user(RES) == pytest.approx(20.0)
    assert slo_tokens_per_user(RES | {"slo": {"ttft_s": 1.0, "tpot_s": None}}) is None
