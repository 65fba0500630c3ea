"""Our torch measurements beside the kernel database on the shapes both have.

    python -m calibration.kerneldb.compare [--db DIR]

For H100 and H200: GEMMs (our torch.matmul / torch._scaled_mm through cuBLAS vs each engine's GEMM
table, same dtype and M, K, N) and attention (our FlashAttention-2 through torch SDPA vs FA3 / TRT /
FlashInfer kernels, same batch, heads, KV heads, head dim 128 and lengths; causal prefill without a
prefix, decode at the same KV length, bf16 KV). Prints, per GPU, op and engine, the number of
matching shapes and the median (p10, p90) of database time / our time, and the long-prompt prefill
rows (batch 1, 32 / 8 heads) one by one. Then NCCL collectives where our multi-GPU runs measured them
(``collectives.csv`` of ``<gpu>`` and ``<gpu>-x*``) against the database's NCCL table, bf16 / half, on
the sizes both have from 8 MiB up (smaller eager calls carry our host work, the database's do not).
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


#: Our collectives.csv names -> the database's op names; the message both count: all-gather the gathered
#: output (our total_bytes), the others each GPU's buffer (our bytes).
NCCL_OPS = {"all_reduce": ("all_reduce", "total_bytes"), "all_gather": ("all_gather", "total_bytes"),
            "all_to_all": ("alltoall", "bytes")}
NCCL_MIN_BYTES = 8 * 1024 * 1024


def collective_pairs(db, gpu: str) -> pd.DataFrame:
    """Our measured collectives beside the database's NCCL timings of the same op, group and message."""
    t = read_table(db, gpu, "nccl", "nccl")
    files = sorted(DATA.glob(f"{gpu}*/collectives.csv"))
    if t is None or not files:
        return pd.DataFrame()
    ours = pd.concat([pd.DataFrame(read_rows(f)) for f in files], ignore_index=True)
    d = t.frame[t.frame["nccl_dtype"] == "half"]
    out = []
    for name, (op, col) in NCCL_OPS.items():
        o = ours[ours["collective"] == name]
        db_s = {(int(r.num_gpus), int(r.message_size) * 2): r.latency / 1e3
                for r in d[d["op_name"] == op].itertuples()}
        for r in o.itertuples():
            key = (int(as_float(r.gpus)), int(as_float(getattr(r, col))))
            if key[1] >= NCCL_MIN_BYTES and key in db_s:
                out.append({"collective": name, "gpus": key[0], "mode": r.mode, "ours_s": as_float(r.seconds),
                            "db_s": db_s[key]})
    return pd.DataFrame(out)


def nccl_report(db) -> list[str]:
    lines = ["| GPU | collective | GPUs | mode | sizes | median ours/db | min | max |", "|---|---|---|---|---|---|---|---|"]
    for gpu in GPUS:
        df = collective_pairs(db, gpu)
        if df.empty:
            continue
        for (c, g, m), x in df.groupby(["collective", "gpus", "mode"]):
            r = (x["ours_s"] / x["db_s"]).to_numpy()
            lines.append(f"| {gpu} | {c} | {g} | {m} | {len(r)} | {np.median(r):.2f} | {r.min():.2f} | {r.max():.2f} |")
    return lines


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
    return "\n".join(lines + [""] + notable + [""] + nccl_report(db))


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
