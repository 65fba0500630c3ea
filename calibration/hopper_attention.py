"""cuDNN (FlashAttention-3 class) attention against FlashAttention-2, from measured CSVs (no torch).

    python -m calibration.hopper_attention calibration/data/h200-hopper --fa2 calibration/data/h200-sxm

For every cuDNN row of ``attention_prefill.csv`` / ``attention_decode.csv`` in the Hopper folder, the
FlashAttention-2 time of the same shape is taken from ``flash_attention_*.csv`` in the same folder
(the same GPU, minutes apart) where present, else from the suite's FA2 rows in ``--fa2`` (the same
GPU model, another machine and day). The speed-up is FA2 time / cuDNN time, per row; the summary
gives its median per phase, head configuration and prompt (or KV) length band.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

PREFILL_KEY = ["batch", "q_heads", "kv_heads", "head_dim", "new_tokens"]
DECODE_KEY = ["batch", "q_heads", "kv_heads", "head_dim", "kv_len"]


def measured(df: pd.DataFrame) -> pd.Series:
    """Kernel time where profiled, else the event median (as calibration/fit.py reads a row)."""
    return df["kernel_s"].where(df["kernel_s"] > 0, df["event_s"])


def _pair(cudnn: pd.DataFrame, fa2: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    a = cudnn.assign(cudnn_s=measured(cudnn))[key + ["cudnn_s", "gqa"]]
    b = fa2.assign(fa2_s=measured(fa2))[key + ["fa2_s"]]
    m = a.merge(b, on=key)
    m["speedup"] = m["fa2_s"] / m["cudnn_s"]
    return m


def speedups(hopper: Path, fa2_dir: Path | None) -> dict[str, pd.DataFrame]:
    """Per-row FA2 / cuDNN time ratios for prefill (``is_causal`` rows) and decode."""
    out = {}
    for phase, key, name in (("prefill", PREFILL_KEY, "attention_prefill"), ("decode", DECODE_KEY, "attention_decode")):
        path = hopper / f"{name}.csv"
        if not path.exists():
            continue
        cudnn = pd.read_csv(path)
        cudnn = cudnn[cudnn["backend"] == "cudnn"]
        same = hopper / f"flash_{name}.csv"
        if same.exists():
            fa2, where = pd.read_csv(same), "same machine"
        elif fa2_dir is not None and (fa2_dir / f"{name}.csv").exists():
            fa2, where = pd.read_csv(fa2_dir / f"{name}.csv"), f"suite data {fa2_dir.name}"
        else:
            continue
        if phase == "prefill":
            fa2 = fa2[(fa2["op"] == "prefill") & (fa2["prefix"] == 0)]
        m = _pair(cudnn, fa2[fa2["backend"] == "flash"], key)
        m["baseline"] = where
        out[phase] = m
    return out


def summary(pairs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for phase, m in pairs.items():
        length = "new_tokens" if phase == "prefill" else "kv_len"
        band = pd.cut(m[length], [0, 1024, 4096, 65536], labels=["<=1k", "2k-4k", ">=8k"])
        for (heads, b), g in m.groupby([m["q_heads"].astype(str) + "/" + m["kv_heads"].astype(str), band],
                                       observed=True):
            rows.append({"phase": phase, "heads": heads, "length": b, "points": len(g),
                         "median_speedup": g["speedup"].median(), "min": g["speedup"].min(),
                         "max": g["speedup"].max(), "baseline": g["baseline"].iloc[0]})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hopper_dir")
    ap.add_argument("--fa2", help="suite data folder with FlashAttention-2 rows of the same GPU model")
    ap.add_argument("--out", help="CSV of every paired row")
    a = ap.parse_args(argv)
    pairs = speedups(Path(a.hopper_dir), Path(a.fa2) if a.fa2 else None)
    if a.out and pairs:
        pd.concat([m.assign(phase=p) for p, m in pairs.items()]).to_csv(a.out, index=False)
    pd.set_option("display.width", 200)
    print(summary(pairs).to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
