"""Export and fit the database's MLA decode and fused-MoE tables into overlay curves.

``attention_decode_mla`` (from ``mla/<engine>/<v>/generation_mla_perf.parquet``): the latent
attention kernel of DeepSeek-style MLA decode alone. TensorRT-LLM's and SGLang's collectors call the
attention backend with absorbed queries (heads x (kv_lora_rank + qk_rope_head_dim)) over the
latent cache, one token per sequence; the absorbed projections are the separate ``mla_bmm`` ops of
aiconfigurator's own DeepSeek model (``sdk/models/deepseek.py``: MLABmm(pre) + GenerationMLA +
MLABmm(post)), which servesim prices as the ``kv_b_proj`` GEMM (same weights, same FLOPs). The kernel
is DeepSeek-V3's: kv_lora_rank 512, qk_rope_head_dim 64 (collector/trtllm/collect_mla.py); the
table's ``num_heads`` is the query heads per GPU. FLOPs and bytes are counted as
``simulator.perf.ops.attention_cost`` counts MLA decode: 2·heads·(576 + 512) per query-key pair;
the latent cache at its dtype plus each query and output (heads x (576 + 512)) at 2 bytes.

Both families are written as ``efficiency.kernels`` entries (``simulator.catalog.gpu.FloorCurve``):
t = floor_s + max(FLOPs / peak, bytes / bandwidth) / curve(x, y). The floor is the time every call
pays whatever its size (launch and ramp; for MoE also the routing and permutation kernels); it is
chosen among fractions of the shortest measured call (:data:`FLOOR_FRACTIONS`) by the training rows'
error, and the curve is fitted on the rest of each time exactly as calibration/fit.py fits curves
(smoothed grid in log2 features, every 4th row held out). MLA decode reads x = log2(sequences),
y = log2(keys per sequence), like the GQA decode curve (the kernel's parallelism is over sequences:
one latent KV head). Fitted on the bf16-KV rows; its error on the fp8-KV rows (bytes at 1 byte per
element) is reported.

MoE: ``moe_bf16`` / ``moe_fp8`` (from ``moe/<engine>/<v>/moe_perf.parquet``): one MoE layer's routed
experts on one GPU, as the collectors time them: ``moe.forward`` on given router logits (routing,
permutation, w13 and w2 grouped GEMMs, activation, un-permute; no router GEMM, no all-to-all;
collector/trtllm/collect_moe.py). Rows kept: the ``balanced`` token distribution (servesim's
uniform routing), gated experts (SwiGLU: kernel sources without ``nongated``, and not the
Nemotron-3 shapes of 512 experts x top-22, which are relu2 per the tables' collection_meta.yaml).
Per GPU: experts / moe_ep_size experts of width inter_size / moe_tp_size; routed rows and active
experts as ``simulator.perf.ops.ExpertRouting`` expects them for uniform routing; FLOPs and bytes by
``simulator.perf.ops.fused_moe_cost``. ``moe_fp8`` is fitted on the block-scaled fp8 rows
(``fp8_block``, the format of the DeepSeek-V3/R1 and Qwen3 FP8 checkpoints: 128 x 128 weight blocks)
where the table has them, else on the per-tensor ``fp8`` rows.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from simulator.catalog.gpu import Curve, FloorCurve, GPUProfile
from simulator.catalog.gpus import load_gpu
from simulator.perf.fused_moe import moe_features
from simulator.perf.ops import ACT_BYTES, ExpertPlan, ExpertRouting, fused_moe_cost

from simulator.calibration.fit import CurveSpec, _arrays, _curve, predict_s
from simulator.calibration.fit_grid import ape_stats, grid_nodes, holdout_mask
from simulator.calibration.io import as_float
from .export import KV_BYTES, majority_source
from .source import Database, Table, read_table, versions

KV_LORA, ROPE = 512, 64                       # DeepSeek-V3's latent (collector/trtllm/collect_mla.py)
MLA_KEY = ["batch_size", "isl", "step", "num_heads", "kv_cache_dtype"]
MOE_KEY = ["moe_dtype", "num_tokens", "hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size",
           "moe_ep_size"]
MOE_DTYPES = {"bfloat16": ("moe_bf16", "bf16", 2.0), "fp8_block": ("moe_fp8", "fp8", 1.0),
              "fp8": ("moe_fp8", "fp8", 1.0)}
#: Nemotron-3 MoE shapes (relu2, non-gated) that some tables do not label as such.
NON_GATED_SHAPES = {(512, 22)}
MIN_ROWS = 16
#: Candidate floors, as fractions of the shortest measured call (1.0 would leave that call no time).
FLOOR_FRACTIONS = (0.0, 0.5, 0.8, 0.9, 0.95)


def _l2(col: str):
    return lambda r: math.log2(max(as_float(r[col]), 1.0))


MLA_SPEC = CurveSpec("attention_decode_mla", "mla_decode", lambda r: True, _l2("batch"), _l2("kv_len"),
                     "log2_batch", "log2_kv", "bf16", False, True, 1.5, group=lambda r: f"heads {r['q_heads']}")


def _moe_spec(key: str, dtype: str) -> CurveSpec:
    return CurveSpec(key, "moe", lambda r: True, _l2("rows_per_expert"), _l2("active_weights"),
                     "log2_rows_per_expert", "log2_active_weights", dtype, False, False, 1.5)


def extra_tables(db: Database, gpu: str, engine: str, version: str) -> dict[str, Table]:
    """The MLA decode and MoE tables of (gpu, engine): at the overlay's framework ``version`` where
    the table has it, else the newest."""
    out: dict[str, Table] = {}
    for kind in ("mla_generation", "moe"):
        have = versions(db, gpu, engine, kind)
        if have:
            t = read_table(db, gpu, engine, kind, version if version in have else None)
            if t is not None:
                out[kind] = t
    return out


def mla_decode_rows(t: Table, kv_dtype: str) -> list[dict[str, Any]]:
    """Rows of a generation_mla table with KV cache ``kv_dtype`` (database spelling)."""
    df = t.frame
    df = df[(df["kv_cache_dtype"] == kv_dtype) & (df["isl"] == 1) & (df["latency"] > 0)
            & (df.get("mla_dtype", "bfloat16") == "bfloat16")]
    df = majority_source(df, MLA_KEY).sort_values(MLA_KEY, kind="stable")
    elem = KV_BYTES[kv_dtype]
    rows = []
    for r in df.itertuples(index=False):
        b, h, L = int(r.batch_size), int(r.num_heads), int(r.isl) + int(r.step)
        dqk, dv = KV_LORA + ROPE, KV_LORA
        rows.append({"batch": b, "q_heads": h, "kv_len": L, "kv_dtype": kv_dtype,
                     "flops": 2.0 * h * (dqk + dv) * b * L,
                     "bytes": b * L * (KV_LORA + ROPE) * elem + b * h * (dqk + dv) * ACT_BYTES,
                     "event_s": float(r.latency) / 1e3, "kernel_s": ""})
    return rows


def moe_frame(t: Table) -> pd.DataFrame:
    df = t.frame
    src = df["kernel_source"] if "kernel_source" in df.columns else pd.Series("", index=df.index)
    keep = (df["moe_dtype"].isin(list(MOE_DTYPES)) & (df["distribution"] == "balanced") & (df["latency"] > 0)
            & ~src.str.contains("nongated") & ~src.str.contains("situ")
            & ~pd.Series([(e, k) in NON_GATED_SHAPES for e, k in zip(df["num_experts"], df["topk"])], index=df.index)
            & (df["num_experts"] % df["moe_ep_size"] == 0) & (df["inter_size"] % df["moe_tp_size"] == 0))
    return majority_source(df[keep], MOE_KEY).sort_values(MOE_KEY, kind="stable").reset_index(drop=True)


def moe_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per measured MoE call: per-GPU shape, routed rows, active experts, FLOPs, bytes."""
    rows = []
    for r in df.itertuples(index=False):
        key, _, wb = MOE_DTYPES[r.moe_dtype]
        e, k, ep, T = int(r.num_experts), int(r.topk), int(r.moe_ep_size), float(r.num_tokens)
        h, inter = int(r.hidden_size), int(r.inter_size) // int(r.moe_tp_size)
        routed, active = (float(v[0]) for v in ExpertRouting(e, k, ExpertPlan(ep=ep)).load(T))
        fl, by = fused_moe_cost(routed, active, h, inter, True, wb)
        x, y = moe_features(routed, active, h, inter, True)
        rows.append({"dtype": r.moe_dtype, "curve": key, "tokens": T, "hidden": h, "inter": inter, "experts": e,
                     "topk": k, "ep": ep, "routed": routed, "active": active, "rows_per_expert": 2.0 ** x,
                     "active_weights": 2.0 ** y, "flops": fl, "bytes": by,
                     "event_s": float(r.latency) / 1e3, "kernel_s": ""})
    return rows


def _s(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Rows as the CSV reader gives them (strings), for calibration.fit."""
    return [{k: repr(v) if isinstance(v, float) else str(v) for k, v in r.items()} for r in rows]


def _net(a: dict[str, np.ndarray], floor: float) -> dict[str, np.ndarray]:
    """The arrays with ``floor`` taken off the measured times (efficiency of the rest)."""
    meas = a["meas"] - floor
    return {**a, "meas": meas, "eff": a["ideal"] / meas}


def _fit_on(a: dict[str, np.ndarray], sel: np.ndarray, spec: CurveSpec, gx: list[float],
            gy: list[float] | None) -> tuple[float, Curve]:
    """Floor and curve fitted on the rows ``sel``: the floor is the fraction of their shortest time
    (:data:`FLOOR_FRACTIONS`) whose curve predicts those rows best (median + p90 error)."""
    best: tuple[float, float, Curve] | None = None
    for f in FLOOR_FRACTIONS:
        floor = f * float(a["meas"][sel].min())
        b = _net(a, floor)
        c = _curve(b, sel, spec, gx, gy)
        st = ape_stats(floor + predict_s(c, b, sel), a["meas"][sel])
        score = st["median_ape_pct"] + st["p90_ape_pct"]
        if best is None or score < best[0]:
            best = (score, floor, c)
    assert best is not None
    return best[1], best[2]


def fit_floor_curve(rows: list[dict[str, str]], spec: CurveSpec, gpu: GPUProfile) -> tuple[FloorCurve, dict[str, Any]]:
    """``floor_s + roofline / curve(x, y)`` fitted on all rows, and its error report: held out every
    4th row (floor and curve fitted on the rest), in sample, and in sample per ``spec.group``."""
    a = _arrays(rows, spec, gpu)
    gx = grid_nodes(a["x"])
    gy = grid_nodes(a["y"]) if a["y"] is not None else None
    test = holdout_mask(len(rows))
    floor_tr, c_tr = _fit_on(a, ~test, spec, gx, gy)
    full = np.ones(len(rows), dtype=bool)
    floor, curve = _fit_on(a, full, spec, gx, gy)
    pred = floor + predict_s(curve, a, full)
    report = {"points": len(rows), "floor_us": round(floor * 1e6, 2),
              "held_out": ape_stats(floor_tr + predict_s(c_tr, a, test), a["meas"][test]),
              "in_sample": ape_stats(pred, a["meas"])}
    if spec.group is not None:
        labels = np.array([spec.group(r) for r in rows])
        report["in_sample_by_group"] = {g: {k: round(v, 2) for k, v in ape_stats(pred[labels == g],
                                                                                 a["meas"][labels == g]).items()}
                                        for g in dict.fromkeys(labels.tolist())}
    return FloorCurve(floor_s=floor, curve=curve), report


def _entry(rep: dict[str, Any]) -> dict[str, Any]:
    h = rep["held_out"]
    return {"rows": rep["points"], "model": "floor + roofline / curve", "floor_us": rep["floor_us"],
            "holdout_median_ape": round(h["median_ape_pct"], 2), "holdout_p90_ape": round(h["p90_ape_pct"], 2),
            "by_group_in_sample": rep.get("in_sample_by_group", {})}


def _fit_mla(gpu: str, t: Table, eff: dict[str, Any], report: dict[str, Any]) -> int:
    rows = _s(mla_decode_rows(t, "bfloat16"))
    if len(rows) < MIN_ROWS:
        return 0
    g = load_gpu(gpu)
    model, rep = fit_floor_curve(rows, MLA_SPEC, g)
    eff["kernels"]["attention_decode_mla"] = model.model_dump()
    report["attention_decode_mla"] = _entry(rep)
    fp8 = _s(mla_decode_rows(t, "fp8"))
    if len(fp8) >= MIN_ROWS:
        a = _arrays(fp8, MLA_SPEC, g)
        st = ape_stats(model.floor_s + predict_s(model.curve, a, np.ones(len(fp8), dtype=bool)), a["meas"])
        report["attention_decode_mla"]["fp8_kv_rows"] = {
            "rows": len(fp8), "median_ape": round(st["median_ape_pct"], 2), "p90_ape": round(st["p90_ape_pct"], 2)}
    return len(rows) + len(fp8)


def _fit_moe(gpu: str, t: Table, eff: dict[str, Any], report: dict[str, Any]) -> int:
    df = moe_frame(t)
    used = 0
    for key, pick in (("moe_bf16", ("bfloat16",)), ("moe_fp8", ("fp8_block", "fp8"))):
        for dtype in pick:                        # the first format the table has enough rows of
            rows = moe_rows(df[df["moe_dtype"] == dtype])
            if len(rows) >= MIN_ROWS:
                model, rep = fit_floor_curve(_s(rows), _moe_spec(key, MOE_DTYPES[dtype][1]), load_gpu(gpu))
                eff["kernels"][key] = model.model_dump()
                report[key] = {**_entry(rep), "moe_dtype": dtype}
                used += len(rows)
                break
    return used


def fit_mla_moe(gpu: str, tabs: dict[str, Table], eff: dict[str, Any], report: dict[str, Any]) -> dict[str, int]:
    """Add the MLA decode and MoE curves of ``tabs`` to the overlay block ``eff`` and their hold-out
    errors to ``report``; returns the rows used per table kind."""
    used: dict[str, int] = {}
    if "mla_generation" in tabs:
        used["mla_generation"] = _fit_mla(gpu, tabs["mla_generation"], eff, report)
    if "moe" in tabs:
        used["moe"] = _fit_moe(gpu, tabs["moe"], eff, report)
    return used
