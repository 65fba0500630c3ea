"""Find the kernel database and read its tables for one (GPU, framework, version).

The database is the Parquet tree that the PyPI package ``aiconfigurator-core`` ships under
``aiconfigurator_core/systems/data/<gpu>/<op>/<framework>/<version>/*.parquet`` (Apache-2.0). It is
located without importing the package (``importlib.util.find_spec``), or given as ``--db DIR``
(the package folder, or its ``systems/data``). Latencies are milliseconds.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from packaging.version import InvalidVersion, Version

from simulator.errors import InputError

PACKAGE = "aiconfigurator-core"
PACKAGE_VERSION = "0.12.0"
LICENSE = "Apache-2.0"
#: servesim profile name -> the database's system folder (aiconfigurator_core/systems/<name>.yaml).
GPU_DIRS = {"h100-sxm": "h100_sxm", "h200-sxm": "h200_sxm", "a100-sxm-80gb": "a100_sxm", "b200": "b200_sxm",
            "gb200": "gb200", "l40s": "l40s", "b300": "b300_sxm", "gb300": "gb300",
            "rtx-pro-6000-server": "rtx_pro_6000_server"}
#: Database systems with GEMM and attention tables that no servesim profile takes, and why.
UNMAPPED = {"b60": "Intel Arc Pro B60: Intel prints only an INT8 rate (197 TOPS), no BF16/FP16 matrix rate for the "
                   "GEMM efficiency to be a fraction of, and the transfer rule that supplies memory-bound curves "
                   "covers NVIDIA GPUs only"}
ENGINES = ("vllm", "sglang", "trtllm")
#: Streaming multiprocessors, for the tile models (the database does not record them).
SMS = {"h100-sxm": 132, "h200-sxm": 132,          # our own meta.json (calibration/data/h100-sxm, h200-sxm)
       "a100-sxm-80gb": 108,                      # NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020)
       "l40s": 142,                               # NVIDIA L40S datasheet / Ada Lovelace whitepaper (2023)
       "b200": 148, "gb200": 148,                 # 74 of 80 SMs per die x 2 (Chips and Cheese, "Nvidia's B200",
#                                                   2025-12-15; hmc-tech.com B200 vs GB200 spec table, 2026)
       "b300": 148, "gb300": 152,                 # CUDA device properties (multiProcessorCount) of B300 SXM6 and
#                                                   GB300 NVL72 GPUs as recorded in public profiler traces and kernel
#                                                   qualification tables (2026); NVIDIA publishes no SM count
       "rtx-pro-6000-server": 188}                # 24,064 CUDA cores / 128 per SM (NVIDIA RTX PRO 6000 Blackwell
#                                                   Server Edition product page; 752 Tensor Cores = 4 per SM)
TABLES = {"gemm": ("gemm", "gemm_perf.parquet"),
          "context": ("attention", "context_attention_perf.parquet"),
          "generation": ("attention", "generation_attention_perf.parquet"),
          "allreduce": ("comm", "custom_allreduce_perf.parquet"),
          "mla_generation": ("mla", "generation_mla_perf.parquet"),
          "moe": ("moe", "moe_perf.parquet"),
          "nccl": ("comm", "nccl_perf.parquet")}
#: Frameworks whose tables are read: the engines, and NCCL (its collectives, ``comm/nccl/<version>``).
LIBRARIES = (*ENGINES, "nccl")


@dataclass(frozen=True)
class Database:
    root: Path                 # the package folder (holds systems/data)
    package_version: str


@dataclass(frozen=True)
class Table:
    """One Parquet table of the database and its rows."""

    kind: str                  # gemm | context | generation | allreduce | mla_generation | moe | nccl
    version: str
    path: Path
    rel: str                   # path relative to the package folder
    frame: pd.DataFrame
    sha256: str


def _dist_version(root: Path) -> str:
    for info in sorted(root.parent.glob("aiconfigurator_core-*.dist-info")):
        return info.name.removesuffix(".dist-info").split("-")[1]
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def locate(db: str | Path | None = None) -> Database:
    """The database folder: ``db`` (package folder or its systems/data), else the installed package."""
    if db is not None:
        p = Path(db).expanduser().resolve()
        for root in (p, p.parent.parent, p.parent.parent.parent):
            if (root / "systems" / "data").is_dir():
                return Database(root, _dist_version(root))
        raise InputError("--db", str(db), "must be the aiconfigurator_core package folder or its systems/data")
    spec = importlib.util.find_spec("aiconfigurator_core")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("--db", None, f"{PACKAGE} is not installed: pip install 'servesim[kerneldb]' "
                                       "or pass --db DIR")
    root = Path(list(spec.submodule_search_locations)[0])
    return Database(root, _dist_version(root))


def gpu_dir(gpu: str) -> str:
    if gpu not in GPU_DIRS:
        raise InputError("--gpu", gpu, f"allowed (GPUs the database measured): {', '.join(GPU_DIRS)}")
    return GPU_DIRS[gpu]


def _vkey(v: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(v))
    except InvalidVersion:
        return (0, v)


def versions(db: Database, gpu: str, engine: str, kind: str) -> list[str]:
    """Framework versions that have table ``kind`` for (gpu, engine), oldest first."""
    op, name = TABLES[kind]
    base = db.root / "systems" / "data" / gpu_dir(gpu) / op / engine
    found = [d.name for d in base.iterdir() if (d / name).is_file()] if base.is_dir() else []
    return sorted(found, key=_vkey)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_table(db: Database, gpu: str, engine: str, kind: str, version: str | None = None) -> Table | None:
    """Table ``kind`` of (gpu, engine) at ``version`` (default: the newest that has it), or None."""
    if engine not in LIBRARIES:
        raise InputError("--engine", engine, f"allowed: {', '.join(LIBRARIES)}")
    found = versions(db, gpu, engine, kind)
    if version is not None and version not in found:
        return None
    if not found:
        return None
    v = version or found[-1]
    op, name = TABLES[kind]
    path = db.root / "systems" / "data" / gpu_dir(gpu) / op / engine / v / name
    return Table(kind, v, path, str(path.relative_to(db.root)), pd.read_parquet(path), sha256(path))
