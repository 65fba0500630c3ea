"""NCCL's collectives from the database's ``comm/nccl/<version>/nccl_perf.parquet`` tables.

The tables time NCCL all-reduce, all-gather, all-to-all and reduce-scatter on 2, 4 and 8 GPUs of one
system (``kernel_source`` NCCL, ``nccl_dtype`` half and int8) over messages of 2^7 to 2^29 elements.
``message_size`` counts elements: at the same count the int8 rows take about half the time of the half
rows at large messages. For all-gather it is the gathered output: at the same count an all-gather
takes about half an all-reduce's time, as a ring moves (G-1)/G of it against 2(G-1)/G; servesim's
message is one GPU's shard, the count / G. All-reduce and all-to-all messages are each GPU's buffer,
as servesim's. The half rows are fitted, in bytes (2 per element), per collective, group size and message range
(:data:`SPLITS`): ``t = latency + bytes / bandwidth`` (``fit_collectives``: bandwidth from the largest
three octaves of the range, latency from its smallest messages; every 4th size held out).
The tables do not say how the calls were launched; they are read as eager calls.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from simulator.calibration.fit import fit_collectives
from simulator.catalog.nccl import NcclProfile

from .source import LICENSE, PACKAGE, Database, Table, read_table

#: Message sizes (bytes of the table's message) where one fit of a collective hands over to the next. The
#: first is the engines' custom all-reduce buffer (8 MiB, calibration/kerneldb/allreduce.py), above which
#: they call NCCL for all-reduce; the second parts prefill-sized messages (8-64 MiB: 1k-8k tokens of a
#: 4k-8k hidden size in bf16) from the largest, where NCCL reaches its full bandwidth only gradually.
SPLITS = (8 * 1024 * 1024, 64 * 1024 * 1024)
#: The database's op names -> servesim's collectives, and the divisor from its message to servesim's.
OPS = {"all_reduce": ("all-reduce", False), "all_gather": ("all-gather", True), "alltoall": ("all-to-all", False)}
OPS_BY_NAME = dict(OPS.values())   # servesim's name -> whether its message is one GPU's shard
DTYPE, BYTES = "half", 2


@dataclass(frozen=True)
class NcclJob:
    gpu: str
    db: Database
    command: str


def rows(t: Table) -> tuple[list[dict[str, str]], int]:
    """The half-precision rows of the collectives servesim prices, as fit_collectives reads them
    (bytes in servesim's message), and how many table rows they are."""
    df = t.frame
    df = df[(df["nccl_dtype"] == DTYPE) & (df["latency"] > 0) & (df["message_size"] > 0)
            & df["op_name"].isin(list(OPS))]
    out = []
    for r in df.itertuples(index=False):
        name, per_gpu = OPS[str(r.op_name)]
        g = int(r.num_gpus)
        nbytes = int(r.message_size) * BYTES // (g if per_gpu else 1)
        out.append({"mode": "eager", "collective": name, "gpus": str(g), "bytes": str(nbytes),
                    "seconds": repr(float(r.latency) / 1e3), "total": repr(float(r.message_size) * BYTES)})
    return out, len(df)


def fit_nccl(t: Table) -> tuple[dict[str, dict[int, list[dict[str, Any]]]], dict[str, Any]]:
    """One fit per collective, group size and message range (:data:`SPLITS`, of the table's message:
    neighbouring ranges share their boundary size), and their report."""
    rs, _ = rows(t)
    bounds = (0.0, *SPLITS, float("inf"))
    parts = [fit_collectives([r for r in rs if lo <= float(r["total"]) <= hi])
             for lo, hi in zip(bounds[:-1], bounds[1:])]
    out: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for name, by_g in parts[0][0]["eager"].items():
        for g in sorted(by_g):
            fits = [p[0]["eager"].get(name, {}).get(g) for p in parts]
            if any(f is None for f in fits):
                continue
            div = g if OPS_BY_NAME[name] else 1   # all-gather: the range's bounds in one GPU's shard
            out.setdefault(name, {})[g] = [
                {**f.model_dump(exclude_none=True), **({"max_bytes": hi / div} if hi != float("inf") else {})}
                for f, hi in zip(fits, bounds[1:]) if f is not None]
    report: dict[str, Any] = {}
    for (_, rep), lo, hi in zip(parts, bounds[:-1], bounds[1:]):
        for k, v in rep.items():
            name, g, _ = k.split("/")
            report[f"{name}/{g}/{_range(lo, hi)}"] = {
                "latency_us": v["latency_us"], "bandwidth_GBps": v["bandwidth_GBps"],
                "holdout_median_ape": round(v["held_out"]["median_ape_pct"], 2),
                "holdout_p90_ape": round(v["held_out"]["p90_ape_pct"], 2)}
    return out, report


def _range(lo: float, hi: float) -> str:
    mib = 1024 * 1024
    return f"{lo / mib:g}-{hi / mib:g}MiB" if hi != float("inf") else f"{lo / mib:g}MiB-"


def fit_nccl_job(job: NcclJob) -> dict[str, Any] | None:
    """The ``hwprofiles/nccl/<gpu>.yaml`` content for the GPU's newest NCCL table (validated), or None."""
    t = read_table(job.db, job.gpu, "nccl", "nccl")
    if t is None:
        return None
    fits, report = fit_nccl(t)
    _, used = rows(t)
    table = {"path": t.rel, "sha256": t.sha256, "rows": int(len(t.frame)), "rows_used": used,
             "kernel_source": ", ".join(f"{s} ({n})" for s, n in t.frame["kernel_source"].value_counts().items()),
             "version": t.version}
    doc = {"library": "nccl", "version": t.version, "gpu": job.gpu,
           "provenance": {"package": PACKAGE, "package_version": job.db.package_version, "license": LICENSE,
                          "tables": [table], "fitted": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"),
                          "command": job.command,
                          "notes": [f"{DTYPE} rows, one alpha-beta fit per collective, group size and message range "
                                    f"(split at {', '.join(str(x) for x in SPLITS)} bytes of the table's message); "
                                    "all-gather messages divided by the group size (one GPU's shard); read as "
                                    "eager calls"]},
           "collectives": fits, "fit_report": report}
    NcclProfile.model_validate(doc)
    return doc
