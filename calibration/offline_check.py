"""Hold servesim's offline throughput against an engine's published maximum-throughput tables.

The table (``calibration/data/published/*.csv``, source in its header) lists, per model, GPU, tensor
parallelism and fixed prompt / output lengths, the output tokens per second the engine's own
benchmark reached with every request queued at once. Each row becomes an offline scenario of the
same requests on the engine's profile (its scheduler defaults, kernels and host overlap); the
predicted throughput is the output tokens over the time from the first arrival to the last
completion. Nothing in servesim is fitted on these tables.

Launch settings the tables state or imply, applied to every row the same way: the checkpoint's weight
format (``weight_dtype``, fp8 where a table has no such column: the ModelOpt FP8 checkpoints), pipeline
stages (``pp``, 1 if absent), experts spread over ``ep`` GPUs with data-parallel attention where
``ep`` > 1 (the page's MoE runs set ``enable_attention_dp``), the KV cache in the model's dtype by
default (the engine's ``auto``; TensorRT-LLM's examples pass ``--kv_cache_dtype fp8`` to these checkpoints to get an fp8 cache, and
the tables do not say which was used: ``--kv-dtype fp8`` runs the other case). Batch limits: for
``trtllm`` the ones ``trtllm-bench`` computes when the command gives none (``trtllm_bench.py``; with
chunked prefill off it raises the token budget to ``isl + max_batch_size``,
``tensorrt_llm/bench/benchmark/utils/general.py`` ``get_settings``); for another engine its server
defaults, with a token budget of at least ``isl + max_batch_size`` per step where its chunked
prefill is off.

Usage::

    python -m calibration.offline_check [--table FILE] [--engine trtllm] [--out DIR] [--workers 2]

Tables: ``trtllm-perf-overview-v1.0.csv`` (the default: Llama-3.1 FP8 on H100 and H200) and
``trtllm-perf-overview-v1.0-more.csv`` (the same page's Blackwell FP4, RTX PRO 6000 and MoE rows).
"""
from __future__ import annotations

import argparse
import io
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.catalog.engines import load_engine
from simulator.catalog.gpus import load_gpu
from simulator.catalog.models import load_model
from simulator.config.loader import scenario_from_dict
from simulator.engine.simulate import simulate
from simulator.errors import ServesimError
from simulator.perf.memory import kv_bytes_per_token_per_gpu, weight_bytes_per_gpu

from .benchmark_setup import prompt_budget
from .trtllm_bench import bench_limits

TABLE = Path(__file__).resolve().parent / "data" / "published" / "trtllm-perf-overview-v1.0.csv"
#: The columns a table of published rows must have (``pp``, ``ep`` and ``weight_dtype`` are optional).
TABLE_COLUMNS = {"model", "gpu", "tp", "isl", "osl", "requests", "output_tps"}


def read_table(path: Path) -> pd.DataFrame:
    """The published rows (comment lines starting with ``#`` are the source)."""
    text = path.read_text(encoding="utf-8")
    return pd.read_csv(io.StringIO("\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))))


def layout(row: dict[str, Any]) -> tuple[int, int, int, str]:
    """(tp, pp, ep, weight_dtype) of a published row; pp and ep 1 and fp8 weights where the table has no column."""
    def num(key: str) -> int:
        v = row.get(key, 1)
        return 1 if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)
    dtype = row.get("weight_dtype")
    return int(row["tp"]), num("pp"), num("ep"), dtype if isinstance(dtype, str) else "fp8"


def scenario_of(row: dict[str, Any], engine: str, kv_dtype: str = "bf16") -> dict[str, Any]:
    """The offline scenario of one published row."""
    tp, pp, ep, dtype = layout(row)
    dep: dict[str, Any] = {"gpu": row["gpu"], "engine": engine, "tp": tp, "pp": pp, "weight_dtype": dtype,
                           "kv_dtype": kv_dtype}
    if ep > 1:
        dep["moe"] = {"expert_parallel": ep, "attention": "dp"}
    isl, osl = int(row["isl"]), int(row["osl"])
    if engine == "trtllm":   # the limits trtllm-bench launches with (a prompt fits one step: no chunking)
        lim = bench_limits(row["model"], row["gpu"], tp, pp, dtype, kv_dtype, isl, osl)
        dep["batching"] = {"max_batch_size": lim.max_batch_size,
                           "max_batched_tokens": max(lim.max_num_tokens, isl + lim.max_batch_size)}
    else:
        sched = load_engine(engine).scheduler
        dep.update(prompt_budget(engine, isl, int(sched.max_num_seqs or 0) if sched else 0))
    return {"name": f"{row['model']} {row['gpu']} tp{tp} pp{pp} {dtype} {row['isl']}/{row['osl']}",
            "model": row["model"],
            "deployment": dep, "seed": 0, "slo": {"ttft_s": None, "tpot_s": None},
            "workload": {"arrival": {"process": "offline"}, "requests": int(row["requests"]),
                         "prompt_tokens": {"dist": "fixed", "value": int(row["isl"])},
                         "output_tokens": {"dist": "fixed", "value": int(row["osl"])}}}


def decode_bound(row: dict[str, Any], kv_dtype: str) -> float:
    """An upper bound on output tokens/s that needs no simulation: every decode step reads the weights
    and the running requests' KV cache through HBM at the datasheet bandwidth, the KV cache fills all
    memory the weights leave free, and each request holds prompt + half its output on average (compute,
    prefill and every overhead ignored). A published figure above it rules that KV format out."""
    model, gpu = load_model(row["model"]), load_gpu(row["gpu"])
    tp, pp, _, dtype = layout(row)
    weights = weight_bytes_per_gpu(model, dtype, tp, pp)
    free = gpu.memory_bytes - weights
    per_request = kv_bytes_per_token_per_gpu(model, kv_dtype, tp, pp) * (int(row["isl"]) + int(row["osl"]) / 2)
    running = free / per_request
    step_s = (weights + free) / gpu.memory_bandwidth
    return running / step_s


def predict(args: tuple[dict[str, Any], str, str]) -> dict[str, Any]:
    """Predicted output tokens/s of one row (NaN with the reason if the run failed)."""
    row, engine, kv_dtype = args
    try:
        res = simulate(scenario_from_dict(scenario_of(row, engine, kv_dtype)))
    except ServesimError as e:
        return {**row, "pred_tps": math.nan, "preemptions": 0, "error": str(e).splitlines()[0][:200]}
    r = res.requests
    done = r.finish > 0
    span = float(r.finish[done].max() - r.arrival.min()) if done.any() else math.nan
    tps = float(r.output[done].sum()) / span if span and span > 0 else math.nan
    return {**row, "pred_tps": tps, "preemptions": int(r.preemptions.sum()),
            "error": "" if done.all() else f"{int((~done).sum())} requests did not finish"}


def compare(table: pd.DataFrame, engine: str, workers: int = 2, kv_dtype: str = "bf16") -> pd.DataFrame:
    """One row per published figure with the prediction and its signed relative error."""
    jobs = [(row, engine, kv_dtype) for row in table.to_dict(orient="records")]
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            out = list(ex.map(predict, jobs, chunksize=1))
    else:
        out = [predict(j) for j in jobs]
    df = pd.DataFrame(out)
    df["err"] = df["pred_tps"] / df["output_tps"] - 1
    df["bound_bf16_kv"] = [decode_bound(r, "bf16") for r in table.to_dict(orient="records")]
    df["bf16_kv_possible"] = df["output_tps"] <= df["bound_bf16_kv"]
    return df


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Median and worst |error| per model and GPU, and over all rows."""
    ok = df[df["error"] == ""]
    rows = []
    keys = [k for k in ("model", "gpu", "tp", "pp", "weight_dtype") if k in ok.columns]
    for key, g in [*ok.groupby(keys), (("all",) + ("",) * (len(keys) - 1), ok)]:
        a = g["err"].abs()
        rows.append({**dict(zip(keys, key)), "rows": len(g),
                     "median_abs": float(a.median()), "worst_abs": float(a.max()),
                     "bias": float(g["err"].median())})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration.offline_check", description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--engine", default="trtllm", help="engine profile to simulate the rows with")
    ap.add_argument("--out", type=Path, default=None, help="folder for rows.csv")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kv-dtype", default="bf16", choices=["bf16", "fp8"],
                    help="KV cache of the simulated runs (the tables do not state theirs)")
    a = ap.parse_args(argv)
    if not a.table.is_file():
        print(f"offline_check: no table at {a.table}", file=sys.stderr)
        return 2
    table = read_table(a.table)
    missing = sorted(TABLE_COLUMNS - set(table.columns))
    if missing:
        print(f"offline_check: {a.table} lacks {', '.join(missing)}: pass a table of published offline rows",
              file=sys.stderr)
        return 2
    df = compare(table, a.engine, a.workers, a.kv_dtype)
    pd.set_option("display.width", 200)
    cols = [c for c in ("model", "gpu", "tp", "pp", "weight_dtype") if c in df.columns]
    cols += ["isl", "osl", "output_tps", "pred_tps", "err", "bound_bf16_kv", "preemptions", "error"]
    print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(summary(df).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    over = int((~df["bf16_kv_possible"]).sum())
    print(f"{over} of {len(df)} published figures exceed the HBM-bandwidth bound of a bf16 KV cache")
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        df.to_csv(a.out / "rows.csv", index=False)
    return 0 if np.isfinite(df["pred_tps"]).any() else 1


if __name__ == "__main__":
    raise SystemExit(main())
