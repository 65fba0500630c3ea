"""Export database tables into the CSVs our own measurement suite writes (calibration/io.py SCHEMAS).

FLOPs and bytes are counted as calibration/shapes.py counts them; attention bytes count the KV
cache at its own dtype (1 byte per element for fp8) and queries / outputs at 2 bytes, as the step
model does (simulator/perf/ops.py ``attention_cost``). Times: the table's latency (ms) as
``event_s``; ``kernel_s`` stays empty (the database times one call, not the kernels in it).

Rows kept: GEMMs of dtype bfloat16 / fp8 (per-tensor scales) / fp8_block with K, N >= 256; attention with head
dimension 128 (the block sizes of the tile models), no sliding window, bf16 attention math,
beam 1; prefill prompts of 128 tokens or more (``PREFILL_MIN_TOKENS``), decode with up to 16 query
heads per KV head (``DECODE_MAX_GROUP``). Where a table has several kernel sources for one shape,
the source with the most rows in the table wins (others fill shapes it lacks). Attention tables are
thinned to every k-th row of the sorted rows (``MAX_ATTENTION_ROWS``) so that the tile fits stay
within minutes.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.calibration.io import SCHEMAS, fmt
from simulator.calibration.shapes import causal_pairs, decode_flops, gemm_bytes, gemm_flops, prefill_flops
from simulator.perf.ops import WEIGHT_BYTES
from .source import SMS, Table

#: database gemm_dtype -> (our dtype label, bytes per input element)
GEMM_DTYPES = {"bfloat16": ("bf16", 2.0), "fp8": ("fp8", 1.0), "fp8_block": ("fp8_block", 1.0),
               "nvfp4": ("fp4", WEIGHT_BYTES["nvfp4"])}
#: database kv_cache_dtype -> bytes per KV element
KV_BYTES = {"bfloat16": 2.0, "fp8": 1.0}
ACT_BYTES = 2.0
HEAD_DIM = 128
MAX_ATTENTION_ROWS = 1600
#: GEMMs whose K or N is below this are dropped: they are no model's weight shape and their time is
#: the launch floor (the fit's hold-out p90 on A100 falls from 40% to 22% without them).
GEMM_MIN_KN = 256
ATTN_KEY = ["batch_size", "isl", "step", "num_heads", "num_key_value_heads"]
#: Decode rows kept: query heads per KV head up to 16, the groups of the models servesim lists
#: (simulator/catalog/models: 1-8, and 16 for Qwen3-235B and Llama 3.1 405B). The tables' groups of
#: 24-128 run slower kernel paths (TensorRT-LLM on H100, group 64: 10-30x the time per CTA of group 8
#: at short KV) and would bend the fit away from the shapes that are served.
DECODE_MAX_GROUP = 16
#: Prefill rows kept: prompts of at least one full 128-row query tile. Below that FlashAttention-3
#: packs the query heads of a KV head into one tile (hopper/heuristics.h ``should_pack_gqa``: packing
#: wins when q x group fills 128-row tiles better than q alone), so a 1-64 token prompt costs a
#: fraction of a tile per query head, a kernel path the tile model does not describe (with those
#: rows the H100 vLLM fit is off by +100-1400% on them and -50% on 128-1024 token prompts).
PREFILL_MIN_TOKENS = 128


def attention_bytes(batch: int, q_heads: int, kv_heads: int, head_dim: int, new: int, kv_len: int,
                    kv_elem: float) -> float:
    """q read and out written at 2 bytes; K and V of ``kv_len`` tokens at ``kv_elem`` bytes.
    Equals shapes.prefill_bytes / decode_bytes when ``kv_elem`` is 2."""
    return ACT_BYTES * batch * head_dim * 2 * q_heads * new + kv_elem * batch * head_dim * 2 * kv_heads * kv_len


def majority_source(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """One row per ``key``: the kernel source with the most rows wins, others fill its gaps."""
    if "kernel_source" not in df.columns or df.empty:
        return df.drop_duplicates(key)
    rank = df["kernel_source"].map(df["kernel_source"].value_counts()).rename("_n")
    out = df.assign(_n=rank).sort_values(["_n", "kernel_source"], ascending=[False, True], kind="stable")
    return out.drop_duplicates(key, keep="first").drop(columns="_n")


def _col(df: pd.DataFrame, name: str, default: Any) -> pd.Series:
    return df[name] if name in df.columns else pd.Series(default, index=df.index)


def attention_frame(t: Table, kv_dtype: str) -> pd.DataFrame:
    """Rows of an attention table that the export keeps for KV dtype ``kv_dtype`` (database spelling)."""
    df = t.frame
    keep = ((df["head_dim"] == HEAD_DIM) & (_col(df, "window_size", 0) == 0)
            & (_col(df, "attn_dtype", "bfloat16") == "bfloat16") & (_col(df, "beam_width", 1) == 1)
            & (_col(df, "kv_cache_dtype", "bfloat16") == kv_dtype) & (df["latency"] > 0)
            & (df["num_heads"] % df["num_key_value_heads"] == 0))
    if t.kind == "generation":
        keep &= (df["isl"] == 1) & (df["num_heads"] <= DECODE_MAX_GROUP * df["num_key_value_heads"])
    else:
        keep &= df["isl"] >= PREFILL_MIN_TOKENS
    df = df[keep].assign(step=_col(df, "step", 0)[keep])
    df = majority_source(df, ATTN_KEY).sort_values(ATTN_KEY, kind="stable").reset_index(drop=True)
    stride = -(-len(df) // MAX_ATTENTION_ROWS) if len(df) > MAX_ATTENTION_ROWS else 1
    return df.iloc[::stride].reset_index(drop=True)


def gemm_frame(t: Table) -> pd.DataFrame:
    df = t.frame
    df = df[df["gemm_dtype"].isin(list(GEMM_DTYPES)) & (df["latency"] > 0)
            & (df[["k", "n"]].min(axis=1) >= GEMM_MIN_KN)]
    key = ["gemm_dtype", "m", "n", "k"]
    return majority_source(df, key).sort_values(key, kind="stable").reset_index(drop=True)


def gemm_rows(df: pd.DataFrame) -> Iterable[dict[str, Any]]:
    for r in df.itertuples(index=False):
        dtype, elem = GEMM_DTYPES[r.gemm_dtype]
        m, k, n = int(r.m), int(r.k), int(r.n)
        yield {"op": "matmul" if dtype == "bf16" else "scaled_mm", "dtype": dtype, "m": m, "k": k, "n": n,
               "flops": gemm_flops(m, k, n), "bytes": gemm_bytes(m, k, n, elem, ACT_BYTES),
               "event_s": float(r.latency) / 1e3, "repeats": "", "impl": getattr(r, "kernel_source", ""),
               "shapes": ""}


def prefill_rows(df: pd.DataFrame, kv_dtype: str) -> Iterable[dict[str, Any]]:
    elem = KV_BYTES[kv_dtype]
    for r in df.itertuples(index=False):
        b, hq, hkv, s = int(r.batch_size), int(r.num_heads), int(r.num_key_value_heads), int(r.isl)
        yield {"op": "prefill", "dtype": "bf16" if elem == 2.0 else "fp8_kv", "batch": b, "q_heads": hq,
               "kv_heads": hkv, "head_dim": HEAD_DIM, "new_tokens": s, "prefix": 0, "kv_len": s,
               "causal_pairs": causal_pairs(s, 0), "flops": prefill_flops(b, hq, HEAD_DIM, s, 0),
               "bytes": attention_bytes(b, hq, hkv, HEAD_DIM, s, s, elem), "event_s": float(r.latency) / 1e3,
               "backend": getattr(r, "kernel_source", ""), "gqa": "native", "mask": "is_causal"}


def decode_rows(df: pd.DataFrame, kv_dtype: str) -> Iterable[dict[str, Any]]:
    """One query per sequence against isl + step keys (the database's generation rows: the KV
    length is ``isl + step``, isl = 1, as aiconfigurator's loader reads them)."""
    elem = KV_BYTES[kv_dtype]
    for r in df.itertuples(index=False):
        b, hq, hkv = int(r.batch_size), int(r.num_heads), int(r.num_key_value_heads)
        L = int(r.isl) + int(r.step)
        yield {"op": "decode", "dtype": "bf16" if elem == 2.0 else "fp8_kv", "batch": b, "q_heads": hq,
               "kv_heads": hkv, "head_dim": HEAD_DIM, "kv_len": L, "flops": decode_flops(b, hq, HEAD_DIM, L),
               "bytes": attention_bytes(b, hq, hkv, HEAD_DIM, 1, L, elem), "event_s": float(r.latency) / 1e3,
               "backend": getattr(r, "kernel_source", ""), "gqa": "native"}


def write_csv(path: Path, schema: str, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows in ``SCHEMAS[schema]``'s column order (missing columns empty); returns the count."""
    cols = SCHEMAS[schema].columns
    lines = [",".join(cols)]
    lines += [",".join(fmt(r.get(c)) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def write_meta(out: Path, gpu: str, device: str, versions: dict[str, str], tiles: bool) -> None:
    """meta.json as fit.py reads it: the SM count only when the tile models are to be fitted."""
    dev: dict[str, Any] = {"name": device, "kind": "gpu"}
    if tiles and gpu in SMS:
        dev["multiprocessors"] = SMS[gpu]
    meta = {"gpu": gpu, "device": dev, "versions": versions, "started_utc": "database",
            "source": "exported by calibration/kerneldb from aiconfigurator-core tables"}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def device_name(t: Table) -> str:
    return str(t.frame["device"].iloc[0]) if "device" in t.frame.columns and len(t.frame) else "?"
