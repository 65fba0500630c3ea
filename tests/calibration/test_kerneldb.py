"""calibration/kerneldb: export of database tables into our CSVs, and the committed overlays.

The Parquet fixture is built here from the documented schema (aiconfigurator-core's gemm_perf,
context_attention_perf and generation_attention_perf columns); aiconfigurator_core itself is only
needed by the last test, which is skipped without it.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from simulator.calibration.fit import fit
from simulator.calibration.io import SCHEMAS
from calibration.kerneldb import export as ex
from calibration.kerneldb.cli import main as cli_main
from calibration.kerneldb.overlay import Job, fit_job
from simulator.calibration.io import read_rows
from calibration.kerneldb.source import ENGINES, GPU_DIRS, SMS, UNMAPPED, locate, read_table
from simulator.calibration.profiles import measured_gpus
from simulator.catalog.gpus import list_gpus, load_gpu
from simulator.catalog.kernels import available_kernel_profiles, load_kernel_profile

DEV = "NVIDIA H100 80GB HBM3"


def _gemm_frame() -> pd.DataFrame:
    rows = []
    for dtype, src in (("bfloat16", "torch.nn.functional.linear"), ("fp8", "CutlassFP8ScaledMMLinearKernel"),
                       ("fp8_block", "DeepGemmFp8BlockScaledMMKernel"), ("nvfp4", "FlashInferCutlassNvFp4LinearKernel")):
        for m in (1, 4, 16, 64, 256, 1024, 4096):
            for n, k in ((4096, 4096), (1024, 4096), (14336, 4096), (4096, 14336), (32, 4096)):
                flops, elem = 2 * m * n * k, {"bfloat16": 2, "nvfp4": 0.5625}.get(dtype, 1)
                nbytes = (m * k + k * n) * elem + m * n * 2
                rate = 600e12 if dtype == "bfloat16" else 1000e12
                rows.append({"framework": "VLLM", "version": "9.9.9", "device": DEV, "op_name": "gemm",
                             "kernel_source": src, "gemm_dtype": dtype, "m": m, "n": n, "k": k,
                             "latency": (0.004 + max(flops / rate, nbytes / 2.5e12) * 1e3)})
    return pd.DataFrame(rows)


def _attn_frame(op: str) -> pd.DataFrame:
    rows = []
    for kv in ("bfloat16", "fp8"):
        for b in (1, 4, 16):
            for hq, hkv in ((32, 8), (64, 8), (32, 32)):
                for s in (128, 512, 2048, 8192):
                    if op == "context":
                        isl, step = s, 0
                        lat = 0.01 + 4 * b * hq * 128 * s * (s + 1) / 2 / 400e12 * 1e3
                    else:
                        isl, step = 1, s - 1
                        lat = 0.008 + (2 if kv == "bfloat16" else 1) * 2 * b * hkv * 128 * s / 2.5e12 * 1e3
                    rows.append({"framework": "VLLM", "version": "9.9.9", "device": DEV,
                                 "op_name": f"{op}_attention", "kernel_source": "vllm_flash_attn_fa3",
                                 "batch_size": b, "isl": isl, "num_heads": hq, "num_key_value_heads": hkv,
                                 "head_dim": 128, "beam_width": 1, "attn_dtype": "bfloat16", "kv_cache_dtype": kv,
                                 "step": step, "window_size": 0, "latency": lat})
    # rows the export must drop: sliding window, head dim 64, fp8 attention math
    rows.append({**rows[0], "window_size": 128})
    rows.append({**rows[0], "head_dim": 64})
    rows.append({**rows[0], "attn_dtype": "fp8"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def fake_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("db") / "aiconfigurator_core"
    base = root / "systems" / "data" / "h100_sxm"
    for op, sub, name, frame in (("gemm", "gemm", "gemm_perf.parquet", _gemm_frame()),
                                 ("context", "attention", "context_attention_perf.parquet", _attn_frame("context")),
                                 ("generation", "attention", "generation_attention_perf.parquet",
                                  _attn_frame("generation"))):
        d = base / sub / "vllm" / "9.9.9"
        d.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(d / name)
    (root.parent / "aiconfigurator_core-0.12.0.dist-info").mkdir(exist_ok=True)
    return root


def test_locate_reads_the_dist_version_and_rejects_other_folders(fake_db: Path, tmp_path: Path) -> None:
    db = locate(fake_db / "systems" / "data")
    assert db.root == fake_db and db.package_version == "0.12.0"
    with pytest.raises(Exception, match="--db"):
        locate(tmp_path)


def test_gemm_export_counts_flops_and_bytes_as_shapes_does(fake_db: Path) -> None:
    t = read_table(locate(fake_db), "h100-sxm", "vllm", "gemm")
    rows = list(ex.gemm_rows(ex.gemm_frame(t)))
    assert {r["dtype"] for r in rows} == {"bf16", "fp8", "fp8_block", "fp4"}
    assert all(min(r["k"], r["n"]) >= ex.GEMM_MIN_KN for r in rows)       # the n=32 shape is dropped
    bf = next(r for r in rows if r["dtype"] == "bf16" and (r["m"], r["k"], r["n"]) == (16, 4096, 1024))
    assert bf["flops"] == 2 * 16 * 4096 * 1024
    assert bf["bytes"] == (16 * 4096 + 4096 * 1024) * 2 + 16 * 1024 * 2     # bf16 in, bf16 out
    f8 = next(r for r in rows if r["dtype"] == "fp8" and (r["m"], r["k"], r["n"]) == (16, 4096, 1024))
    assert f8["bytes"] == (16 * 4096 + 4096 * 1024) * 1 + 16 * 1024 * 2     # fp8 in, bf16 out
    f4 = next(r for r in rows if r["dtype"] == "fp4" and (r["m"], r["k"], r["n"]) == (16, 4096, 1024))
    assert f4["bytes"] == (16 * 4096 + 4096 * 1024) * 0.5625 + 16 * 1024 * 2   # NVFP4 in (scales included)
    assert bf["event_s"] == pytest.approx((0.004 + bf["bytes"] / 2.5e12 * 1e3) / 1e3)    # memory-bound row


def test_attention_export_counts_kv_bytes_at_the_kv_dtype(fake_db: Path) -> None:
    db = locate(fake_db)
    ctx, gen = read_table(db, "h100-sxm", "vllm", "context"), read_table(db, "h100-sxm", "vllm", "generation")
    pre = list(ex.prefill_rows(ex.attention_frame(ctx, "bfloat16"), "bfloat16"))
    assert len(pre) == 3 * 3 * 4                       # window, head-dim-64 and fp8-math rows dropped
    r = next(r for r in pre if (r["batch"], r["q_heads"], r["kv_heads"], r["new_tokens"]) == (4, 64, 8, 512))
    assert r["causal_pairs"] == 512 * 513 // 2
    assert r["flops"] == 4 * 4 * 64 * 128 * (512 * 513 // 2)
    assert r["bytes"] == 2 * 4 * 128 * (2 * 64 * 512 + 2 * 8 * 512)
    for kv, elem in (("bfloat16", 2), ("fp8", 1)):
        dec = list(ex.decode_rows(ex.attention_frame(gen, kv), kv))
        d = next(r for r in dec if (r["batch"], r["q_heads"], r["kv_heads"], r["kv_len"]) == (16, 32, 8, 2048))
        assert d["kv_len"] == 1 + 2047                 # isl + step
        assert d["flops"] == 4 * 32 * 128 * 2048 * 16
        # K and V at the KV dtype, q and out at 2 bytes
        assert d["bytes"] == elem * 16 * 128 * 2 * 8 * 2048 + 2 * 16 * 128 * 2 * 32


def test_exported_csvs_have_our_columns_and_fit_unchanged(fake_db: Path, tmp_path: Path) -> None:
    doc = fit_job(Job("h100-sxm", "vllm", None, locate(fake_db), "test"), keep=tmp_path)
    for name in ("gemm", "attention_prefill", "attention_decode"):
        header = (tmp_path / "main" / f"{name}.csv").read_text().splitlines()[0]
        assert tuple(header.split(",")) == SCHEMAS[name].columns
    assert json.loads((tmp_path / "main" / "meta.json").read_text())["device"]["multiprocessors"] == 132
    assert "multiprocessors" not in json.loads((tmp_path / "curves" / "meta.json").read_text())["device"]
    res = fit(tmp_path / "main", "h100-sxm", decode_feature="batch_kv_heads")
    assert {"gemm_bf16", "gemm_fp8"} <= set(res["efficiency"]["curves"])
    assert set(doc["efficiency"]["curves"]) >= {"gemm_bf16", "gemm_fp8", "gemm_fp8_block", "attention_decode"}
    assert "gemm_fp4" not in doc["efficiency"]["curves"]      # H100: no fp4 peak, its NVFP4 rows are not exported
    assert "fp4" not in {r["dtype"] for r in read_rows(tmp_path / "main" / "gemm.csv")}
    for fam in ("attention_prefill", "attention_decode"):
        rep = doc["fit_report"][fam]
        assert rep["model"] in ("tiles", "curve") and rep["alternative"]["model"] != rep["model"]
        tiles = doc["efficiency"][f"{fam}_tiles"]
        assert (tiles is None) == (rep["model"] == "curve")
    assert doc["provenance"]["package_version"] == "0.12.0" and len(doc["provenance"]["tables"]) == 3
    # a synthetic GEMM table (a floor plus a fixed fraction of the roofline) is fitted closely
    assert doc["fit_report"]["gemm_bf16"]["holdout_median_ape"] < 5.0


def test_cli_errors_are_one_line_with_exit_2(fake_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["fit", "--gpu", "h100-sxm", "--engine", "vllm", "--version", "0.0.1", "--db", str(fake_db)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --version") and "9.9.9" in err and "\n" not in err


def test_committed_overlays_load_and_name_their_source() -> None:
    pairs = available_kernel_profiles()
    assert ("h100-sxm", "vllm") in pairs and ("h100-sxm", "trtllm") in pairs
    for gpu, engine in pairs:
        k = load_kernel_profile(gpu, engine)
        assert k is not None and k.gpu == gpu and k.engine == engine
        p = k.provenance
        assert p.package == "aiconfigurator-core" and p.package_version == "0.12.0" and p.license == "Apache-2.0"
        assert p.tables and all(t.path.startswith("systems/data/") and len(t.sha256) == 64 for t in p.tables)
        assert k.efficiency.curves and k.fit_report


@pytest.mark.skipif(importlib.util.find_spec("aiconfigurator_core") is None,
                    reason="aiconfigurator-core is not installed (pip install 'servesim[kerneldb]')")
def test_refit_of_a_small_table_matches_the_committed_file() -> None:
    committed = load_kernel_profile("a100-sxm-80gb", "vllm")
    assert committed is not None
    doc = fit_job(Job("a100-sxm-80gb", "vllm", committed.version, locate(), "test"))
    assert doc["provenance"]["tables"][0]["sha256"] == committed.provenance.tables[0].sha256
    assert doc["efficiency"]["curves"]["gemm_bf16"] == committed.efficiency.curves["gemm_bf16"].model_dump()
    assert doc["fit_report"]["gemm_bf16"] == committed.fit_report["gemm_bf16"]


def test_every_mapped_gpu_is_a_calibrated_profile_with_sms_and_overlays() -> None:
    """Each GPU the database maps to has a profile, an SM count for the tile models and all three
    committed engine overlays, and, unless we measured it ourselves, is calibrated from the database."""
    own = set(measured_gpus())
    for gpu, system in GPU_DIRS.items():
        assert gpu in list_gpus() and SMS.get(gpu, 0) > 0, gpu
        for engine in ENGINES:
            k = load_kernel_profile(gpu, engine)
            assert k is not None and all(t.path.startswith(f"systems/data/{system}/") for t in k.provenance.tables)
        eff = load_gpu(gpu).efficiency
        assert eff.status == "calibrated", gpu
        if gpu not in own:
            assert f"systems/data/{system}/" in eff.source and "aiconfigurator-core 0.12.0" in eff.source, gpu


def _has(system: Path, op: str, name: str) -> bool:
    return any(system.glob(f"{op}/*/*/{name}"))


@pytest.mark.skipif(importlib.util.find_spec("aiconfigurator_core") is None,
                    reason="aiconfigurator-core is not installed (pip install 'servesim[kerneldb]')")
def test_every_database_system_with_gemm_and_attention_tables_maps_to_a_calibrated_profile() -> None:
    data = locate().root / "systems" / "data"
    systems = sorted(d.name for d in data.iterdir() if d.is_dir() and _has(d, "gemm", "gemm_perf.parquet")
                     and _has(d, "attention", "context_attention_perf.parquet")
                     and _has(d, "attention", "generation_attention_perf.parquet"))
    assert len(systems) >= 6                                  # 0.12.0 holds ten such systems
    mapped = {system: gpu for gpu, system in GPU_DIRS.items()}
    assert set(UNMAPPED) <= set(systems) and not set(UNMAPPED) & set(mapped)
    for system in systems:
        if system in UNMAPPED:
            continue
        assert system in mapped, f"{system}: add it to GPU_DIRS (with a profile) or to UNMAPPED with the reason"
        eff = load_gpu(mapped[system]).efficiency
        assert eff.status == "calibrated", system
