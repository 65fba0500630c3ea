"""NCCL's collectives as a kernel database measured them on one GPU system.

Files live in ``hwprofiles/nccl/<gpu>.yaml`` and are written by ``python -m calibration.kerneldb nccl
--write`` from the database's ``comm/nccl/<version>/nccl_perf.parquet`` tables, with their provenance.
Each collective and group size has one alpha-beta fit per range of message sizes (NCCL changes
protocol with the message; the ranges are ``calibration/kerneldb/nccl.py`` ``SPLITS``). They are read when GPU profiles are written
(``simulator/calibration/profiles.py``), which copies them into the profile's eager ``collectives``
for the group sizes our own runs did not measure; the simulator never reads these files itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..errors import InputError
from ..paths import hwprofiles_dir
from ..schema import StrictModel
from .gpu import CollectiveModel
from .kernels import Provenance, read_model_file


class NcclProfile(StrictModel):
    """``hwprofiles/nccl/<gpu>.yaml``."""

    library: Literal["nccl"]
    version: str = Field(min_length=1)
    gpu: str = Field(min_length=1)
    provenance: Provenance
    collectives: dict[str, dict[int, CollectiveModel]]   # eager calls: "all-reduce" -> {gpus: fits}
    fit_report: dict[str, dict[str, Any]] = {}


def nccl_profile_path(gpu_name: str) -> Path:
    return hwprofiles_dir() / "nccl" / f"{gpu_name}.yaml"


def load_nccl_profile(gpu_name: str) -> NcclProfile | None:
    """The database's NCCL fits for ``gpu_name``, or None where it has none."""
    path = nccl_profile_path(gpu_name)
    if not path.is_file():
        return None
    label = f"nccl/{path.name}"
    prof = read_model_file(path, NcclProfile, label)
    if prof.gpu != gpu_name:
        raise InputError(f"{label}:gpu", prof.gpu, "must match the file name")
    return prof
