"""The engines' custom all-reduce kernels from the database's ``custom_allreduce_perf`` tables.

Each engine sends an all-reduce to its own one-shot / two-shot NVLink kernel only while the message
fits the kernel's registered buffer, and to NCCL above it. The buffer limits (bytes per GPU), from
the engines' code:

* vLLM: ``CustomAllreduce(..., max_size=8192 * 1024, symm_mem_enabled=False)`` and
  ``should_custom_ar``: ``inp_size < max_size`` (vllm/distributed/device_communicators/
  custom_all_reduce.py, main branch, read 2026-12-07).
* SGLang: ``CustomAllreduce._MAX_CAR_SIZE = 8192 * 1024`` on CUDA, same ``inp_size < max_size`` test
  (python/sglang/srt/distributed/device_communicators/custom_all_reduce.py, commit 004e656, read
  2026-12-07).
* TensorRT-LLM: the AUTO strategy's workspace, ``getMaxRequiredWorkspaceSize``: 16,000,000 bytes for
  2 GPUs, 8,000,000 for more (cpp/tensorrt_llm/common/customAllReduceUtils.h, commit 005b299, read
  2026-12-07); the AUTO look-up table of the same file turns to NCCL (strategy 0) at the same sizes
  for hidden sizes 4096 and 8192 (e.g. TP 8, hidden 4096: one-shot / two-shot up to 512 tokens =
  4 MiB, NCCL from 1024 tokens = 8 MiB).

Groups above 2 GPUs use the custom kernel only where every pair of GPUs has NVLink (vLLM and SGLang:
``if world_size > 2 and not full_nvlink: ... disabled``, same files); on a GPU whose profile has no
scale-up link (L40S: PCIe only) the overlay keeps the 2-GPU fits alone, for all three engines.

The fits (calibration/fit.py ``fit_collectives``: t = latency + N / bandwidth, every 4th size held
out) use only the sizes at or below the limit, so the overlay's fit is the custom kernel's alone;
``max_bytes`` carries the limit and larger messages keep the GPU profile's NCCL fit
(simulator/perf/comm.py). The vLLM and SGLang tables time the kernel eagerly and replayed from a
CUDA graph (``kernel_source`` ..._eager / ..._graph); TensorRT-LLM's has one source that says
neither, and prices both modes.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from simulator.calibration.fit import fit_collectives
from .source import Table

#: Largest message (bytes per GPU) each engine sends to its custom kernel, per group size (0: any).
#: vLLM / SGLang test ``size < 8 MiB`` on sizes that are multiples of 16, so the largest is 8 MiB - 16.
LIMITS: dict[str, dict[int, float]] = {"vllm": {0: 8192 * 1024 - 16}, "sglang": {0: 8192 * 1024 - 16},
                                       "trtllm": {2: 16e6, 0: 8e6}}


def limit(engine: str, gpus: int) -> float:
    """The largest message ``engine`` sends to its custom all-reduce on ``gpus`` GPUs (bytes per GPU)."""
    by = LIMITS[engine]
    return by.get(gpus, by[0])


def mode_of(source: str) -> tuple[str, ...]:
    """Modes a row's ``kernel_source`` prices: eager, graph, or both where the table does not say."""
    s = source.lower()
    if s.endswith("graph"):
        return ("graph",)
    if s.endswith("eager"):
        return ("eager",)
    return ("eager", "graph")


def rows(t: Table, engine: str, nvlink: bool = True) -> tuple[list[dict[str, str]], int]:
    """The table's bf16 all-reduce rows within the engine's limit, as fit_collectives reads them (a
    row that prices both modes twice), and the number of table rows they come from."""
    df = t.frame
    if "allreduce_dtype" in df.columns:
        df = df[df["allreduce_dtype"] == "bfloat16"]
    df = df[(df["latency"] > 0) & (df["message_size"] > 0)]
    out: list[dict[str, str]] = []
    used = 0
    for r in df.itertuples(index=False):
        g, n = int(r.num_gpus), int(r.message_size)
        if n > limit(engine, g) or (g > 2 and not nvlink):
            continue
        used += 1
        for mode in mode_of(str(getattr(r, "kernel_source", ""))):
            out.append({"mode": mode, "collective": "all_reduce", "gpus": str(g), "bytes": str(n),
                        "seconds": repr(float(r.latency) / 1e3)})
    return out, used


def fit_allreduce(t: Table, engine: str, nvlink: bool = True) -> tuple[dict[str, Any], dict[str, Any], int]:
    """``{"collectives": ..., "collectives_graph": ...}`` overlay entries, their fit report and the
    number of table rows used."""
    rs, used = rows(t, engine, nvlink)
    groups = pd.DataFrame(rs).groupby(["mode", "gpus"]).size() if rs else pd.Series(dtype=int)
    rs = [r for r in rs if groups[(r["mode"], r["gpus"])] >= 4]   # an alpha-beta fit and a held-out size
    if not rs:
        return {}, {}, 0
    fits, report = fit_collectives(rs)
    eff: dict[str, Any] = {}
    for mode, key in (("eager", "collectives"), ("graph", "collectives_graph")):
        for name, by_g in fits[mode].items():
            eff.setdefault(key, {})[name] = {g: {**f.model_dump(exclude_none=True), "max_bytes": limit(engine, g)}
                                             for g, f in sorted(by_g.items())}
    rep = {k: {"rows": sum(1 for r in rs if f"{r['gpus']}/{r['mode']}" in k), "model": "alpha-beta",
               "latency_us": v["latency_us"], "bandwidth_GBps": v["bandwidth_GBps"],
               "max_bytes": limit(engine, int(k.split("/")[1])),
               "holdout_median_ape": round(v["held_out"]["median_ape_pct"], 2),
               "holdout_p90_ape": round(v["held_out"]["p90_ape_pct"], 2)} for k, v in report.items()}
    return eff, rep, used
