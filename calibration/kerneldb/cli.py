"""``python -m calibration.kerneldb fit --gpu h100-sxm --engine vllm [--version V] [--db DIR] [--write]``
(or ``--all``): fit kernel overlays from the database and print or write them."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from simulator.catalog.kernels import kernel_profile_path
from simulator.errors import ServesimError

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
    a = ap.parse_args(argv)
    if not a.all and not (a.gpu and a.engine):
        ap.error("give --gpu and --engine, or --all")
    try:
        db = locate(a.db)
        for gpu, engine in jobs(db, a.gpu, a.engine, a.all):
            args = f"fit --gpu {gpu} --engine {engine}" + (f" --version {shlex.quote(a.version)}" if a.version else "")
            keep = Path(a.keep) / gpu / engine if a.keep else None
            doc = fit_job(Job(gpu, engine, a.version, db, f"python -m calibration.kerneldb {args} --write"), keep)
            print(summary(doc), flush=True)
            if a.write:
                path = kernel_profile_path(gpu, engine, a.version)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(render(doc, args + " --write"))
    except ServesimError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
