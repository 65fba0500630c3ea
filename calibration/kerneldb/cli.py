"""``python -m calibration.kerneldb fit --gpu h100-sxm --engine vllm [--version V] [--db DIR] [--write]``
(or ``--all``): fit kernel overlays from the database and print or write them.
``python -m calibration.kerneldb nccl [--gpu G | --all] [--db DIR] [--write]``: the database's NCCL
collectives per GPU (``hwprofiles/nccl/<gpu>.yaml``)."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import yaml

from simulator.catalog.kernels import kernel_profile_path
from simulator.catalog.nccl import nccl_profile_path
from simulator.errors import ServesimError

from .nccl import NcclJob, fit_nccl_job
from .overlay import Job, fit_job
from .source import ENGINES, GPU_DIRS, locate, versions

HEADER = "# written by `python -m calibration.kerneldb {args}`; do not edit by hand\n"


def render(doc: dict[str, Any], args: str) -> str:
    return HEADER.format(args=args) + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120)


def jobs(db: Any, gpu: str | None, engine: str | None, all_: bool) -> list[tuple[str, str]]:
    """(gpu, engine) pairs to fit: one, or every pair the database has attention or GEMM tables for."""
    if not all_:
        return [(gpu or "", engine or "")]
    return [(g, e) for g in GPU_DIRS for e in ENGINES
            if any(versions(db, g, e, k) for k in ("gemm", "context", "generation"))]


def summary(doc: dict[str, Any]) -> str:
    parts = [f"{k} {v['model']} {v['holdout_median_ape']:.1f}%/{v['holdout_p90_ape']:.1f}%"
             for k, v in doc["fit_report"].items() if "holdout_median_ape" in v]
    return f"{doc['gpu']:14s} {doc['engine']:7s} {doc['version']:11s} " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration.kerneldb", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit kernel overlays (hold-out median / p90 APE printed per family)")
    f.add_argument("--gpu", choices=sorted(GPU_DIRS))
    f.add_argument("--engine", choices=ENGINES)
    f.add_argument("--all", action="store_true", help="every (gpu, engine) the database has")
    f.add_argument("--version", help="framework version of the tables (default: the newest of each table)")
    f.add_argument("--db", help="aiconfigurator_core package folder or its systems/data (default: installed)")
    f.add_argument("--write", action="store_true",
                   help="write hwprofiles/kernels/<gpu>/<engine>.yaml (<engine>@<version>.yaml with --version)")
    f.add_argument("--keep", help="leave the exported CSVs in this folder (one sub-folder per gpu/engine)")
    n = sub.add_parser("nccl", help="fit the database's NCCL collectives (hold-out median / p90 APE printed)")
    n.add_argument("--gpu", choices=sorted(GPU_DIRS))
    n.add_argument("--all", action="store_true", help="every GPU the database has NCCL tables for")
    n.add_argument("--db", help="aiconfigurator_core package folder or its systems/data (default: installed)")
    n.add_argument("--write", action="store_true", help="write hwprofiles/nccl/<gpu>.yaml")
    a = ap.parse_args(argv)
    if a.cmd == "nccl" and not a.all and not a.gpu:
        ap.error("give --gpu, or --all")
    if a.cmd == "fit" and not a.all and not (a.gpu and a.engine):
        ap.error("give --gpu and --engine, or --all")
    try:
        db = locate(a.db)
        for line, doc, path, args in (nccl_files(db, a) if a.cmd == "nccl" else overlays(db, a)):
            print(line, flush=True)
            if a.write:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(render(doc, args + " --write"))
    except ServesimError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def overlays(db: Any, a: argparse.Namespace) -> Iterator[tuple[str, dict[str, Any], Path, str]]:
    """(summary line, file content, path, command arguments) of each kernel overlay asked for."""
    for gpu, engine in jobs(db, a.gpu, a.engine, a.all):
        args = f"fit --gpu {gpu} --engine {engine}" + (f" --version {shlex.quote(a.version)}" if a.version else "")
        keep = Path(a.keep) / gpu / engine if a.keep else None
        doc = fit_job(Job(gpu, engine, a.version, db, f"python -m calibration.kerneldb {args} --write"), keep)
        yield summary(doc), doc, kernel_profile_path(gpu, engine, a.version), args


def nccl_files(db: Any, a: argparse.Namespace) -> Iterator[tuple[str, dict[str, Any], Path, str]]:
    """The same for each GPU's NCCL fits (GPUs without an NCCL table are skipped)."""
    for gpu in (sorted(GPU_DIRS) if a.all else [a.gpu]):
        args = f"nccl --gpu {gpu}"
        doc = fit_nccl_job(NcclJob(gpu, db, f"python -m calibration.kerneldb {args} --write"))
        if doc is not None:
            parts = [f"{k} {v['holdout_median_ape']:.1f}%" for k, v in doc["fit_report"].items()
                     if k.startswith("all-reduce/8")]
            yield f"{gpu:20s} nccl {doc['version']:8s} " + "; ".join(parts), doc, nccl_profile_path(gpu), args
