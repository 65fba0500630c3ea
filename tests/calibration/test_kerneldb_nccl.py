"""calibration/kerneldb/nccl.py: the database's NCCL tables as fits by message size, and where the GPU
profiles take them (simulator/calibration/profiles.py)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from calibration.kerneldb.nccl import SPLITS, fit_nccl, rows
from calibration.kerneldb.source import Table
from simulator.calibration.profiles import with_nccl
from simulator.catalog.gpus import load_gpu
from simulator.catalog.nccl import load_nccl_profile
from simulator.perf.comm import collective_time

MIB = 1024 * 1024

def _laws() -> list[tuple[float, float]]:
    """Known laws per message range (bytes of the table's message): (latency s, bandwidth B/s), the
    bandwidth growing with the range and each latency set so that neighbouring laws meet at their shared
    boundary, as a measured curve is continuous."""
    out = [(10e-6, 100e9)]
    for bw, edge in ((300e9, SPLITS[0]), (450e9, SPLITS[1])):
        a, b = out[-1]
        out.append((a + edge * (1 / b - 1 / bw), bw))
    return out


LAWS = _laws()


def _law(total: float) -> tuple[float, float]:
    return LAWS[0] if total <= SPLITS[0] else LAWS[1] if total <= SPLITS[1] else LAWS[2]


def _table() -> Table:
    """NCCL rows in the database's schema (message_size in elements, latency in ms): the half rows follow
    LAWS over their bytes; int8 rows and reduce-scatter, which the fit skips, follow another law."""
    out = []
    for op in ("all_reduce", "all_gather", "alltoall", "reduce_scatter"):
        for g in (2, 4, 8):
            for p in range(7, 30):
                for dtype, size in (("half", 2), ("int8", 1)):
                    total = 2.0 ** p * size
                    a, b = _law(total) if dtype == "half" and op != "reduce_scatter" else (1e-3, 1e9)
                    out.append({"framework": "TRTLLM", "version": "2.29.2", "device": "NVIDIA X", "op_name": op,
                                "kernel_source": "NCCL", "nccl_dtype": dtype, "num_gpus": g, "message_size": 2 ** p,
                                "latency": (a + total / b) * 1e3})
    return Table("nccl", "2.29.2", Path("x"), "x", pd.DataFrame(out), "0" * 64)


def test_rows_keep_half_precision_in_servesim_messages() -> None:
    rs, used = rows(_table())
    assert used == 3 * 3 * 23                            # three collectives x three groups x 2^7..2^29
    ag = [r for r in rs if r["collective"] == "all-gather" and r["gpus"] == "8"]
    assert {int(r["bytes"]) * 8 for r in ag} == {int(float(r["total"])) for r in ag}   # one GPU's shard


def test_fits_recover_each_range_and_all_gather_limits_are_per_shard() -> None:
    fits, report = fit_nccl(_table())
    assert set(fits) == {"all-reduce", "all-gather", "all-to-all"}
    for coll, by_g in fits.items():
        for g, segs in by_g.items():
            div = g if coll == "all-gather" else 1
            assert [s.get("max_bytes") for s in segs] == [SPLITS[0] / div, SPLITS[1] / div, None]
            for seg, (a, b) in zip(segs, LAWS):
                assert seg["bandwidth_Bps"] * div == pytest.approx(b, rel=0.02)
                assert seg["latency_s"] == pytest.approx(a, rel=0.05)
    assert report["all-reduce/8/0-8MiB"]["holdout_median_ape"] < 1.0


@pytest.mark.parametrize("gpu", ["b200", "h100-sxm"])
def test_database_gpus_price_nccl_by_the_database(gpu: str) -> None:
    n = load_nccl_profile(gpu)
    assert n is not None and n.provenance.tables[0].path.endswith("nccl_perf.parquet")
    g = load_gpu(gpu)
    big = n.collectives["all-reduce"][8][-1]
    assert collective_time(g, "all-reduce", 2.0 ** 30, 8) == pytest.approx(big.latency_s + 2.0 ** 30 / big.bandwidth_Bps)
    assert "NCCL" in g.efficiency.source and f"hwprofiles/nccl/{gpu}.yaml" in g.efficiency.source


def test_our_own_measurements_keep_their_group_sizes() -> None:
    # H200: 2 and 4 GPUs measured by our own runs stay; 8 (extrapolated there) comes from the database
    g = load_gpu("h200-sxm")
    assert not isinstance(g.efficiency.collectives["all-reduce"][4], list)
    assert g.efficiency.collectives["all-reduce"][8] == load_nccl_profile("h200-sxm").collectives["all-reduce"][8]
    eff: dict = {"collectives": {"all-reduce": {2: {"latency_s": 1e-5, "bandwidth_Bps": 1e11}}}}
    note = with_nccl("h200-sxm", eff, own={2})
    assert eff["collectives"]["all-reduce"][2] == {"latency_s": 1e-5, "bandwidth_Bps": 1e11}
    assert isinstance(eff["collectives"]["all-reduce"][8], list) and note is not None and "2," not in note
    assert with_nccl("h100-pcie", {}, set()) is None      # no database table for it


def test_cli_writes_the_file_from_a_database_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from calibration.kerneldb import cli
    root = tmp_path / "aiconfigurator_core"
    d = root / "systems" / "data" / "b200_sxm" / "comm" / "nccl" / "2.29.2"
    d.mkdir(parents=True)
    _table().frame.to_parquet(d / "nccl_perf.parquet")
    (tmp_path / "aiconfigurator_core-0.12.0.dist-info").mkdir()
    out = tmp_path / "nccl" / "b200.yaml"
    monkeypatch.setattr(cli, "nccl_profile_path", lambda gpu: out)
    assert cli.main(["nccl", "--gpu", "b200", "--db", str(root), "--write"]) == 0
    text = out.read_text()
    assert text.startswith("# written by `python -m calibration.kerneldb nccl --gpu b200 --write`")
    assert "nccl_perf.parquet" in text and "all-reduce/8/0-8MiB" in capsys.readouterr().out
    assert cli.main(["nccl", "--gpu", "h100-sxm", "--db", str(root)]) == 0   # no table there: nothing to do
    assert cli.main(["nccl", "--gpu", "b200", "--db", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.skipif(importlib.util.find_spec("aiconfigurator_core") is None,
                    reason="aiconfigurator-core is not installed (pip install 'servesim[kerneldb]')")
def test_refit_matches_the_committed_file() -> None:
    from calibration.kerneldb.nccl import NcclJob, fit_nccl_job
    from calibration.kerneldb.source import locate
    committed = load_nccl_profile("b200")
    assert committed is not None
    doc = fit_nccl_job(NcclJob("b200", locate(), "test"))
    assert doc is not None and doc["provenance"]["tables"][0]["sha256"] == committed.provenance.tables[0].sha256
    assert doc["fit_report"] == committed.fit_report
