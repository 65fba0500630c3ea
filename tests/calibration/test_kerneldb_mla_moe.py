"""calibration/kerneldb/mla_moe.py: MLA decode and fused-MoE tables exported, fitted and applied.

Synthetic tables in the database's documented schema (generation_mla_perf, moe_perf), with times
from a known floor plus the roofline at a known efficiency; aiconfigurator_core is needed only by the
last test (a refit of the real tables against the committed overlay), which is skipped without it.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from calibration.kerneldb import mla_moe as mm
from calibration.kerneldb.overlay import Job, fit_job
from calibration.kerneldb.source import locate
from simulator.catalog.gpus import load_gpu
from simulator.catalog.kernels import KernelFamilyProfile, apply_kernels, load_kernel_profile
from simulator.catalog.models import load_model
from simulator.perf.ops import attention_cost, fused_moe_cost

from .test_kerneldb import DEV, _attn_frame, _gemm_frame

BW, PEAK = 3.35e12, 989e12          # h100-sxm profile's datasheet bandwidth and bf16 peak


def _mla_frame() -> pd.DataFrame:
    rows = []
    for kv in ("bfloat16", "fp8"):
        for h in (16, 32, 64, 128):
            for b in (1, 4, 16, 64, 256):
                for s in (64, 512, 4096, 16384):
                    fl = 2 * h * 1088 * b * s
                    by = b * s * 576 * (2 if kv == "bfloat16" else 1) + b * h * 1088 * 2
                    lat = 0.012 + max(fl / PEAK, by / BW) / 0.7 * 1e3
                    rows.append({"framework": "TRTLLM", "version": "9.9.9", "device": DEV, "op_name": "mla_generation",
                                 "kernel_source": "default", "mla_dtype": "bfloat16", "kv_cache_dtype": kv,
                                 "num_heads": h, "batch_size": b, "isl": 1, "tp_size": 128 // h, "step": s - 1,
                                 "latency": lat})
    return pd.DataFrame(rows)


def _moe_frame() -> pd.DataFrame:
    rows = []
    for dtype, wb in (("bfloat16", 2.0), ("fp8_block", 1.0)):
        for e, k, hid, inter in ((128, 8, 4096, 1536), (256, 8, 7168, 2048), (512, 22, 1024, 2688)):
            for tp, ep in ((1, 1), (4, 1), (1, 8)):
                for T in (1, 8, 64, 512, 4096):
                    for dist in ("balanced", "power_law_1.2"):
                        rows.append({"framework": "TRTLLM", "version": "9.9.9", "device": DEV, "op_name": "moe",
                                     "kernel_source": "moe_torch_flow_cutlass", "moe_dtype": dtype, "num_tokens": T,
                                     "hidden_size": hid, "inter_size": inter, "topk": k, "num_experts": e,
                                     "moe_tp_size": tp, "moe_ep_size": ep, "distribution": dist, "latency": 0.0})
    df = pd.DataFrame(rows)
    lat = []
    for r in df.itertuples(index=False):   # floor 15 us + roofline at 40% (fp8 peak 2x bf16)
        row = mm.moe_rows(pd.DataFrame([r._asdict() | {"latency": 1.0}]))[0]
        peak = PEAK * (2 if r.moe_dtype != "bfloat16" else 1)
        lat.append(0.015 + max(row["flops"] / peak, row["bytes"] / BW) / 0.4 * 1e3)
    return df.assign(latency=lat)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("db") / "aiconfigurator_core"
    base = root / "systems" / "data" / "h100_sxm"
    for sub, name, frame in (("gemm", "gemm_perf.parquet", _gemm_frame()),
                             ("attention", "generation_attention_perf.parquet", _attn_frame("generation")),
                             ("mla", "generation_mla_perf.parquet", _mla_frame()),
                             ("moe", "moe_perf.parquet", _moe_frame())):
        d = base / sub / "trtllm" / "9.9.9"
        d.mkdir(parents=True, exist_ok=True)
        frame.assign(framework="TRTLLM").to_parquet(d / name)
    (root.parent / "aiconfigurator_core-0.12.0.dist-info").mkdir(exist_ok=True)
    return root


def test_mla_export_counts_as_the_step_model_does(db: Path) -> None:
    t = mm.extra_tables(locate(db), "h100-sxm", "trtllm", "9.9.9")["mla_generation"]
    dsv3 = load_model("deepseek-v3")
    for kv, ours in (("bfloat16", "bf16"), ("fp8", "fp8")):
        for r in mm.mla_decode_rows(t, kv):
            tp = 128 // r["q_heads"]
            n, ctx = r["batch"], r["batch"] * r["kv_len"]
            assert (r["flops"], r["bytes"]) == attention_cost(dsv3, tp, "decode", ctx, n, ctx, ours)


def test_moe_export_keeps_balanced_gated_rows_and_counts_per_gpu(db: Path) -> None:
    t = mm.extra_tables(locate(db), "h100-sxm", "trtllm", "9.9.9")["moe"]
    df = mm.moe_frame(t)
    assert set(df["distribution"]) == {"balanced"} and not ((df["num_experts"] == 512) & (df["topk"] == 22)).any()
    rows = mm.moe_rows(df[(df["moe_tp_size"] == 1) & (df["moe_ep_size"] == 8) & (df["num_tokens"] == 4096)])
    r = next(x for x in rows if x["experts"] == 256 and x["dtype"] == "fp8_block")
    # 4096 tokens x top-8 over 8 GPUs: 4096 rows here, all 32 local experts active
    assert r["routed"] == pytest.approx(4096.0) and r["active"] == pytest.approx(32.0)
    assert (r["flops"], r["bytes"]) == fused_moe_cost(r["routed"], r["active"], 7168, 2048, True, 1.0)


def test_fit_predicts_held_out_calls_and_the_overlay_carries_the_families(db: Path) -> None:
    doc = fit_job(Job("h100-sxm", "trtllm", None, locate(db), "test"))
    prof = KernelFamilyProfile.model_validate(doc)
    assert set(prof.efficiency.kernels) == {"attention_decode_mla", "moe_bf16", "moe_fp8"}
    rep = doc["fit_report"]
    assert rep["moe_fp8"]["moe_dtype"] == "fp8_block"
    for key, floor_us in (("attention_decode_mla", 12.0), ("moe_bf16", 15.0), ("moe_fp8", 15.0)):
        assert rep[key]["holdout_median_ape"] < 5.0, rep[key]
        # the floor never exceeds the shortest call (where the curve can absorb it, it may be lower)
        assert 0.0 <= prof.efficiency.kernels[key].floor_s * 1e6 <= floor_us * 1.01
    assert rep["attention_decode_mla"]["fp8_kv_rows"]["median_ape"] < 10.0
    tables = {t.path.split("/")[-1] for t in prof.provenance.tables}
    assert {"generation_mla_perf.parquet", "moe_perf.parquet"} <= tables
    g = apply_kernels(load_gpu("h100-sxm"), prof)
    assert set(g.efficiency.kernels) == {"attention_decode_mla", "moe_bf16", "moe_fp8"}
    assert load_gpu("h100-sxm").efficiency.kernels == {}


@pytest.mark.skipif(importlib.util.find_spec("aiconfigurator_core") is None,
                    reason="aiconfigurator-core is not installed (pip install 'servesim[kerneldb]')")
def test_refit_of_the_real_tables_matches_the_committed_overlay() -> None:
    committed = load_kernel_profile("h200-sxm", "sglang")
    assert committed is not None
    eff: dict = {"kernels": {}}
    report: dict = {}
    mm.fit_mla_moe("h200-sxm", mm.extra_tables(locate(), "h200-sxm", "sglang", committed.version), eff, report)
    assert set(eff["kernels"]) == set(committed.efficiency.kernels) == {"attention_decode_mla", "moe_bf16", "moe_fp8"}
    for key, fam in eff["kernels"].items():
        assert fam == committed.efficiency.kernels[key].model_dump()
        assert report[key] == committed.fit_report[key]
