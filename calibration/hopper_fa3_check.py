"""Our own cuDNN (FlashAttention-3 class) attention runs against the engines' FA3-class step prices.

    python -m calibration.hopper_fa3_check calibration/data/h100-hopper [--gpu h100-sxm] [--engine vllm]

Every cuDNN row of ``attention_prefill.csv`` / ``attention_decode.csv`` (bf16, GQA, causal prefill)
is priced as the step model prices that call for ``--engine``: the GPU profile with the engine's
kernel overlay (fitted from the engine's own kernel tables, not from these rows), prefill through
its tile model (``prefill_attention_time``), decode through its decode model. Errors are
``predicted / measured - 1`` on the profiler's kernel time (the event median where there is none).
No torch needed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.catalog.engines import load_engine
from simulator.catalog.gpus import load_gpu
from simulator.catalog.kernels import with_engine_kernels
from simulator.errors import InputError
from simulator.perf.roofline import decode_attention_time, prefill_attention_time
from simulator.perf.tiles import AttentionCall

from .hopper_attention import measured


def priced(data: Path, gpu_name: str, engine_name: str) -> pd.DataFrame:
    """One row per cuDNN call: shape, measured and predicted seconds, error."""
    engine = load_engine(engine_name)
    gpu = with_engine_kernels(load_gpu(gpu_name), engine.kernels.tables)
    out = []
    for phase in ("prefill", "decode"):
        path = data / f"attention_{phase}.csv"
        if not path.is_file():
            raise InputError("data", str(data), f"must hold attention_{phase}.csv from calibration.hopper_kernels")
        df = pd.read_csv(path)
        df = df[(df["backend"] == "cudnn") & (df["dtype"] == "bf16")].assign(measured_s=lambda d: measured(d))
        for r in df.itertuples(index=False):
            if phase == "prefill":
                call = AttentionCall(r.batch, r.q_heads, r.batch * r.new_tokens, r.batch * r.kv_len,
                                     float(r.causal_pairs) * r.batch, r.head_dim, r.head_dim)
                t, _ = prefill_attention_time(gpu, float(r.flops), float(r.bytes), "bf16", call)
                length = r.new_tokens
            else:
                t, _ = decode_attention_time(gpu, float(r.flops), float(r.bytes), "bf16", r.batch * r.kv_heads,
                                             float(r.kv_len))
                length = r.kv_len
            out.append({"phase": phase, "batch": r.batch, "heads": f"{r.q_heads}/{r.kv_heads}", "length": length,
                        "measured_s": r.measured_s, "predicted_s": t.seconds})
    res = pd.DataFrame(out)
    res["err"] = res["predicted_s"] / res["measured_s"] - 1
    return res


def summary(res: pd.DataFrame) -> pd.DataFrame:
    g = res.groupby("phase")
    return pd.DataFrame({"points": g.size(), "median_abs_err": g["err"].apply(lambda e: float(np.median(np.abs(e)))),
                         "p90_abs_err": g["err"].apply(lambda e: float(np.percentile(np.abs(e), 90))),
                         "median_err": g["err"].median()})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--gpu", default="h100-sxm")
    ap.add_argument("--engine", default="vllm")
    a = ap.parse_args(argv)
    res = priced(a.data, a.gpu, a.engine)
    print(summary(res).to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
