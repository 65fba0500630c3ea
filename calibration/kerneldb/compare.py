"""Our torch measurements beside the kernel database on the shapes both have.

    python -m calibration.kerneldb.compare [--db DIR]

For H100 and H200: GEMMs (our torch.matmul / torch._scaled_mm through cuBLAS vs each engine's GEMM
table, same dtype and M, K, N) and attention (our FlashAttention-2 through torch SDPA vs FA3 / TRT /
FlashInfer kernels, same batch, heads, KV heads, head dim 128 and lengths; causal prefill without a
prefix, decode at the same KV length, bf16 KV). Prints, per GPU, op and engine, the number of
matching shapes and the median (p10, p90) of database time / our time, and the long-prompt prefill
rows (batch 1, 32 / 8 heads) one by one.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.errors import ServesimError

from simulator.calibration.fit import measured_s
from simulator.calibration.io import as_float, read_rows
from .source import ENGINES, locate, read_table

DATA = Path(__file__).resolve().parent.parent / "data"
GPUS = ("h100-sxm", "h200-sxm")
DB_DTYPE = {"bf16": "bfloat16", "fp8": "fp8"}


def _ours(gpu: str, name: str) -> pd.DataFrame:
    rows = read_rows(DATA / gpu / f"{name}.csv")
    df = pd.DataFrame(rows)
    df["ours_s"] = [measured_s(r) for r in rows]
    for c in ("m", "k", "n", "batch", "q_heads", "kv_heads", "head_dim", "new_tokens", "prefix", "kv_len"):
        if c in df.columns:
            df[c] = [int(as_float(v)) for v in df[c]]
    return df


def _db_attention(t, kind: str) -> pd.DataFrame:
    df = t.frame
    keep = ((df["head_dim"] == 128) & (df.get("window_size", 0) == 0) & (df["attn_dtype"] == "bfloat16")
            & (df["kv_cache_dtype"] == "bfloat16"))
    df = df[keep]
    out = pd.DataFrame({"batch": df["batch_size"], "q_heads": df["num_heads"], "kv_heads": df["num_key_value_heads"],
                        "kv_len": df["isl"] + (df["step"] if kind == "generation" else 0),
                        "db_s": df["latency"] / 1e3})
    return out.groupby(["batch", "q_heads", "kv_heads", "kv_len"], as_index=False)["db_s"].min()


def pairs(db, gpu: str, engine: str) -> dict[str, pd.DataFrame]:
    """Matched rows per op: our seconds and the database's."""
    out: dict[str, pd.DataFrame] = {}
    g = read_table(db, gpu, engine, "gemm")
    if g is not None:
        ours = _ours(gpu, "gemm")
        for dt, name in DB_DTYPE.items():
            d = g.frame[g.frame["gemm_dtype"] == name][["m", "k", "n", "latency"]].assign(db_s=lambda x: x.latency / 1e3)
            out[f"gemm_{dt}"] = ours[ours["dtype"] == dt].merge(d, on=["m", "k", "n"])
    for kind, name, op in (("context", "attention_prefill", "prefill"), ("generation", "attention_decode", "decode")):
        t = read_table(db, gpu, engine, kind)
        if t is None:
            continue
        ours = _ours(gpu, name)
        ours = ours[(ours["op"] == op) & (ours["head_dim"] == 128)]
        if op == "prefill":
            ours = ours[ours["prefix"] == 0]
        out[name] = ours.merge(_db_attention(t, kind), on=["batch", "q_heads", "kv_heads", "kv_len"])
    return out


def report(db) -> str:
    lines = ["| GPU | op | engine | shapes | median db/ours | p10 | p90 |", "|---|---|---|---|---|---|---|"]
    notable = []
    for gpu in GPUS:
        for engine in ENGINES:
            for op, df in pairs(db, gpu, engine).items():
                if df.empty:
                    continue
                r = (df["db_s"] / df["ours_s"]).to_numpy()
                lines.append(f"| {gpu} | {op} | {engine} | {len(r)} | {np.median(r):.2f} | "
                             f"{np.percentile(r, 10):.2f} | {np.percentile(r, 90):.2f} |")
                if op == "attention_prefill":
                    sel = df[(df["batch"] == 1) & (df["q_heads"] == 32) & (df["kv_heads"] == 8)]
                    for row in sel.sort_values("kv_len").itertuples():
                        notable.append(f"{gpu} {engine} prefill b1 32/8 heads {row.kv_len} tokens: ours "
                                       f"{row.ours_s * 1e3:.3f} ms, database {row.db_s * 1e3:.3f} ms, "
                                       f"ours/db {row.ours_s / row.db_s:.2f}x")
    return "\n".join(lines + [""] + notable)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration.kerneldb.compare", description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="aiconfigurator_core package folder or its systems/data (default: installed)")
    a = ap.parse_args(argv)
    try:
        print(report(locate(a.db)))
    except ServesimError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
