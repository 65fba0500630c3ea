"""Fit one (GPU, engine) from the database through calibration/fit.py and build its overlay file.

Steps: export the tables into CSV folders (export.py), run ``simulator.calibration.fit.fit`` on them (one
fitting path for our measurements and the database), and per attention family keep the model with
the lower held-out error score (median + p90 absolute percentage error, both from fit.py's
every-4th-row hold-out): the FlashAttention-2 tile model (fit.py fits it when meta.json gives the
SM count) or the plain curve (fitted on a folder whose meta.json has no SM count). fp8 GEMMs with
per-tensor scales become ``gemm_fp8`` (what servesim's weight_dtype ``fp8`` reads); block-scaled
fp8 becomes the extra curve ``gemm_fp8_block``, NVFP4 the curve ``gemm_fp4``. Decode attention on an
fp8 KV cache is first priced with the bf16-KV model (bytes at 1 byte per element); a ``kv_fp8`` overlay of its own is written
only where a model fitted on the fp8 rows beats that by more than ``FP8_MARGIN_PCT`` points of
held-out median error. The engine's custom all-reduce (``allreduce.py``) becomes the overlay's
``collectives`` / ``collectives_graph``. MLA decode and fused MoE (their own tables) become
``efficiency.kernels`` entries (mla_moe.py).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator.catalog.gpus import load_gpu
from simulator.catalog.kernels import KernelEfficiency, KernelFamilyProfile
from simulator.errors import InputError
from simulator.perf.roofline import decode_attention_time

from simulator.calibration.fit import SPECS, fit, fit_curve, measured_s
from .allreduce import fit_allreduce
from simulator.calibration.fit_grid import ape_stats
from simulator.calibration.io import as_float, read_rows
from . import export as ex
from .mla_moe import extra_tables, fit_mla_moe
from .source import LICENSE, PACKAGE, Database, Table, read_table, versions

FP8_MARGIN_PCT = 2.0
#: Decode kernel geometries an engine's tables may take (calibration/fit_decode.py FAMILIES).
DECODE_FAMILIES = ("fa2", "fa3")
#: Prefill tile geometries likewise (calibration/fit_tiles.py FAMILIES).
PREFILL_FAMILIES = ("fa2", "fa3")
GEMM_FP8_BLOCK = dataclasses.replace(SPECS[1], key="gemm_fp8_block", keep=lambda r: r["dtype"] == "fp8_block")
#: NVFP4 GEMMs (fp4 weights and activations with fp8 scales per 16 elements) on the fp4 roofline.
GEMM_FP4 = dataclasses.replace(SPECS[1], key="gemm_fp4", keep=lambda r: r["dtype"] == "fp4", dtype="fp4")


@dataclass(frozen=True)
class Job:
    gpu: str
    engine: str
    version: str | None
    db: Database
    command: str


def tables(job: Job) -> dict[str, Table]:
    """The job's gemm / context / generation tables (newest version of each unless one is asked for),
    and its custom all-reduce table where the database has one (version asked for, else the newest)."""
    out = {k: t for k in ("gemm", "context", "generation")
           if (t := read_table(job.db, job.gpu, job.engine, k, job.version)) is not None}
    if out and (ar := read_table(job.db, job.gpu, job.engine, "allreduce", job.version)
                or read_table(job.db, job.gpu, job.engine, "allreduce")) is not None:
        out["allreduce"] = ar
    if not out:
        have = sorted({v for k in ("gemm", "context", "generation") for v in versions(job.db, job.gpu, job.engine, k)})
        raise InputError("--version" if job.version else "--engine", job.version or job.engine,
                         f"the database has no {job.engine} tables for {job.gpu}"
                         + (f"; versions there: {', '.join(have)}" if have else ""))
    return out


def _export(tabs: dict[str, Table], gpu: str, work: Path, versions_: dict[str, str]) -> dict[str, int]:
    """Folders main/ (all bf16, tiles), curves/ (prefill only, no SM count), fp8kv/ (fp8-KV decode)."""
    used: dict[str, int] = {}
    dirs = {name: work / name for name in ("main", "curves", "fp8kv")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    dev = ex.device_name(next(iter(tabs.values())))
    for name, d in dirs.items():
        ex.write_meta(d, gpu, dev, versions_, tiles=name != "curves")
    if "gemm" in tabs:
        frame = ex.gemm_frame(tabs["gemm"])   # NVFP4 rows only where the datasheet gives an fp4 peak
        frame = frame if load_gpu(gpu).has_dtype("fp4") else frame[frame["gemm_dtype"] != "nvfp4"]
        used["gemm"] = ex.write_csv(dirs["main"] / "gemm.csv", "gemm", ex.gemm_rows(frame))
    if "context" in tabs:
        rows = list(ex.prefill_rows(ex.attention_frame(tabs["context"], "bfloat16"), "bfloat16"))
        used["context"] = ex.write_csv(dirs["main"] / "attention_prefill.csv", "attention_prefill", rows)
        ex.write_csv(dirs["curves"] / "attention_prefill.csv", "attention_prefill", rows)
    if "generation" in tabs:
        used["generation"] = ex.write_csv(dirs["main"] / "attention_decode.csv", "attention_decode",
                                          ex.decode_rows(ex.attention_frame(tabs["generation"], "bfloat16"),
                                                         "bfloat16"))
        used["generation_fp8"] = ex.write_csv(dirs["fp8kv"] / "attention_decode.csv", "attention_decode",
                                              ex.decode_rows(ex.attention_frame(tabs["generation"], "fp8"), "fp8"))
    return used


def _score(rep: dict[str, Any]) -> float:
    h = rep["held_out"]
    return h["median_ape_pct"] + h["p90_ape_pct"]


def _entry(rep: dict[str, Any], model: str) -> dict[str, Any]:
    h = rep["held_out"]
    return {"rows": rep["points"], "model": model, "holdout_median_ape": round(h["median_ape_pct"], 2),
            "holdout_p90_ape": round(h["p90_ape_pct"], 2)}


def _pick(tile_rep: dict[str, Any] | None, curve_rep: dict[str, Any] | None) -> str:
    if tile_rep is None:
        return "curve"
    if curve_rep is None:
        return "tiles"
    return "tiles" if _score(tile_rep) <= _score(curve_rep) else "curve"


def _attention(eff: dict[str, Any], report: dict[str, Any], main: dict[str, Any], curves: dict[str, Any]) -> None:
    """Choose tile model or curve for prefill and decode; record both in the report."""
    for fam, tkey, alt in (("attention_prefill", "attention_prefill_tiles", curves["report"].get("attention_prefill")),
                           ("attention_decode", "attention_decode_tiles", main["report"].get("attention_decode_curve"))):
        tile_rep = main["report"].get(fam) if tkey in main["efficiency"] else None
        curve_rep = alt if tkey in main["efficiency"] else main["report"].get(fam)
        if tile_rep is None and curve_rep is None:
            continue
        pick = _pick(tile_rep, curve_rep)
        chosen = tile_rep if pick == "tiles" else curve_rep
        report[fam] = _entry(chosen, pick)
        other = curve_rep if pick == "tiles" else tile_rep
        if other is not None:
            report[fam]["alternative"] = _entry(other, "curve" if pick == "tiles" else "tiles")
        eff[tkey] = main["efficiency"][tkey] if pick == "tiles" else None
        curve_src = main if fam == "attention_decode" else curves
        if fam in curve_src["efficiency"]["curves"]:
            eff["curves"][fam] = curve_src["efficiency"]["curves"][fam]


def _decode_ape(gpu_name: str, block: dict[str, Any], rows: list[dict[str, str]]) -> dict[str, float]:
    """Error of a decode model (overlay ``block``) on ``rows`` as the step model prices them."""
    g = _overlaid(load_gpu(gpu_name), block)
    pred = np.array([decode_attention_time(g, as_float(r["flops"]), as_float(r["bytes"]), "bf16",
                                           as_float(r["batch"]) * as_float(r["kv_heads"]),
                                           as_float(r["kv_len"]))[0].seconds for r in rows])
    return ape_stats(pred, np.array([measured_s(r) for r in rows]))


def _overlaid(base: Any, block: dict[str, Any]) -> Any:
    k = KernelEfficiency.model_validate(block)
    eff = base.efficiency
    upd: dict[str, Any] = {"curves": {**eff.curves, **k.curves}}
    for key in ("attention_prefill_tiles", "attention_decode_tiles"):
        if key in block:
            upd[key] = getattr(k, key)
    return base.model_copy(update={"efficiency": eff.model_copy(update=upd)})


def _fp8_decode(job: Job, fp8dir: Path, eff: dict[str, Any], report: dict[str, Any]) -> dict[str, Any] | None:
    """The kv_fp8 overlay, or None when the bf16-KV decode model prices the fp8-KV rows as well."""
    path = fp8dir / "attention_decode.csv"
    rows = [r for r in read_rows(path) if measured_s(r) > 0] if path.exists() else []
    if len(rows) < 8:
        return None
    shared = _decode_ape(job.gpu, {k: eff[k] for k in ("attention_decode_tiles",) if k in eff}
                         | {"curves": {k: v for k, v in eff["curves"].items() if k == "attention_decode"}}, rows)
    own_fit = fit(fp8dir, job.gpu, decode_feature="batch_kv_heads", decode_families=DECODE_FAMILIES)
    own: dict[str, Any] = {"curves": {}}
    sub: dict[str, Any] = {}
    _attention(own, sub, own_fit, {"report": {}, "efficiency": {"curves": {}}})
    entry = sub["attention_decode"]
    report["attention_decode_kv_fp8"] = {**entry, "bf16_kv_model_on_these_rows": {
        "median_ape": round(shared["median_ape_pct"], 2), "p90_ape": round(shared["p90_ape_pct"], 2)}}
    if entry["holdout_median_ape"] + FP8_MARGIN_PCT < shared["median_ape_pct"]:
        report["attention_decode_kv_fp8"]["used"] = "own model (kv_fp8 overlay)"
        return own
    report["attention_decode_kv_fp8"]["used"] = "bf16-KV model (bytes at 1 byte per element)"
    return None


def _gemm(main_dir: Path, eff: dict[str, Any], report: dict[str, Any], res: dict[str, Any]) -> None:
    for key in ("gemm_bf16", "gemm_fp8"):
        if key in res["efficiency"]["curves"]:
            eff["curves"][key] = res["efficiency"]["curves"][key]
            report[key] = _entry(res["report"][key], "curve")
    path = main_dir / "gemm.csv"
    every = read_rows(path) if path.exists() else []
    for spec in (GEMM_FP8_BLOCK, GEMM_FP4):
        rows = [r for r in every if spec.keep(r) and measured_s(r) > 0]
        if len(rows) >= 8:
            curve, rep = fit_curve(rows, spec, load_gpu(res["gpu"]))
            eff["curves"][spec.key] = curve.model_dump()
            report[spec.key] = _entry(rep, "curve")


def _provenance(job: Job, tabs: dict[str, Table], used: dict[str, int]) -> dict[str, Any]:
    out = []
    for kind, t in tabs.items():
        srcs = t.frame["kernel_source"].value_counts() if "kernel_source" in t.frame.columns else {}
        out.append({"path": t.rel, "sha256": t.sha256, "rows": int(len(t.frame)),
                    "rows_used": int(used.get(kind, 0) + (used.get("generation_fp8", 0) if kind == "generation" else 0)),
                    "kernel_source": ", ".join(f"{s} ({n})" for s, n in srcs.items()), "version": t.version})
    vers = sorted({t.version for t in tabs.values()})
    notes = [] if len(vers) == 1 else ["tables of different framework versions: "
                                       + ", ".join(f"{k} {t.version}" for k, t in tabs.items())]
    return {"package": PACKAGE, "package_version": job.db.package_version, "license": LICENSE, "tables": out,
            "fitted": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"), "command": job.command, "notes": notes}


def fit_job(job: Job, keep: Path | None = None) -> dict[str, Any]:
    """The overlay file's content for ``job`` (validated); ``keep``: leave the exported CSVs there."""
    tabs = tables(job)
    attn = tabs.get("context") or tabs.get("generation") or tabs["gemm"]
    nvlink = load_gpu(job.gpu).scaleup_bandwidth_gbps is not None
    comm, comm_report, comm_rows = fit_allreduce(tabs["allreduce"], job.engine, nvlink) if "allreduce" in tabs \
        else ({}, {}, 0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(keep or tmp)
        used = _export(tabs, job.gpu, work, {"aiconfigurator-core": job.db.package_version, job.engine: attn.version})
        main = fit(work / "main", job.gpu, decode_feature="batch_kv_heads", decode_families=DECODE_FAMILIES,
                   prefill_families=PREFILL_FAMILIES)
        curves = fit(work / "curves", job.gpu) if (work / "curves" / "attention_prefill.csv").exists() \
            else {"report": {}, "efficiency": {"curves": {}}}
        eff: dict[str, Any] = {"curves": {}}
        report: dict[str, Any] = {}
        _gemm(work / "main", eff, report, main)
        _attention(eff, report, main, curves)
        kv_fp8 = _fp8_decode(job, work / "fp8kv", eff, report)
    eff.update(comm)
    used["allreduce"] = comm_rows
    extra = extra_tables(job.db, job.gpu, job.engine, attn.version)
    eff["kernels"] = {}
    used.update(fit_mla_moe(job.gpu, extra, eff, report))
    if not eff["kernels"]:
        del eff["kernels"]
    tabs = {**tabs, **extra}
    report.update({f"custom_{k}": v for k, v in comm_report.items()})
    doc = {"engine": job.engine, "version": attn.version, "gpu": job.gpu,
           "provenance": _provenance(job, tabs, used), "efficiency": eff, "kv_fp8": kv_fp8, "fit_report": report}
    KernelFamilyProfile.model_validate(doc)
    return doc
