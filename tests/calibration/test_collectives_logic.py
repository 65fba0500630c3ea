"""Collective orchestration on CPU processes (gloo): ranks agree on calls, rank 0 writes rows."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")

from simulator.calibration import collectives
from simulator.calibration.io import read_rows


def test_two_ranks_write_rows_and_resume(tmp_path):
    pts = [(c, b, "eager") for c in ("all_reduce", "all_gather") for b in (1024, 65536)]
    collectives.run_group(tmp_path, 2, pts, 60, device="cpu")
    rows = read_rows(tmp_path / "collectives.csv")
    assert len(rows) == 4
    for r in rows:
        total = int(r["bytes"]) * (2 if r["collective"] == "all_gather" else 1)
        assert int(r["total_bytes"]) == total
        algbw = total / float(r["seconds"])
        assert float(r["algbw_Bps"]) == pytest.approx(algbw, rel=1e-4)
        assert float(r["busbw_Bps"]) == pytest.approx(algbw * (1.0 if r["collective"] == "all_reduce" else 0.5),
                                                      rel=1e-4)
    # everything measured: nothing pending for eager; graph mode still pending
    pending = collectives.pending_points(tmp_path, 2, sizes=(1024, 65536))
    assert {m for _, _, m in pending} == {"graph"}
