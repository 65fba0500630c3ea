"""Kernel-family overlays: an engine's measured kernels on one GPU, as a partial efficiency block.

Files live in ``hwprofiles/kernels/<gpu>/<engine>.yaml`` (engine: vllm, sglang or trtllm) and are
written by ``python -m calibration.kerneldb fit --write`` from a published kernel database (see
docs/guide/calibration.md, "Kernel databases"). A file's ``efficiency`` block holds only what the engine's
kernels change: its curves replace the profile's curves of the same name (the others are kept), and a
tile-model key that is present replaces the profile's (``null``: price that attention with the curve).
``kv_fp8`` is a second overlay applied on top when the KV cache is stored in fp8, present only where
the fp8-KV kernels need a model of their own (their bytes are already counted at 1 byte per element).
``collectives`` / ``collectives_graph`` hold the engine's custom all-reduce (eager / CUDA graph), each
fit with the largest message the engine sends to it (``max_bytes``); they become the profile's
``engine_collectives`` and larger messages keep the profile's NCCL fits (``simulator/perf/comm.py``).
``kernels`` holds the engine's MLA decode (``attention_decode_mla``) and fused-MoE (``moe_bf16``,
``moe_fp8``) families as floor + curve models (``FloorCurve``); they are added to the profile's.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import Field, ValidationError

from ..errors import InputError
from ..paths import hwprofiles_dir
from ..schema import StrictModel
from .gpu import CollectiveFit, Curve, DecodeTileModel, FloorCurve, GPUProfile, TileModel

ENGINES = ("vllm", "sglang", "trtllm")
KV_DTYPES_FP8 = ("fp8", "fp8_e4m3", "fp8_e5m2")


class KernelEfficiency(StrictModel):
    """A partial ``Efficiency`` block: keys set here replace the profile's, the rest are kept."""

    curves: dict[str, Curve] = {}
    attention_prefill_tiles: TileModel | None = None
    attention_decode_tiles: DecodeTileModel | None = None
    kernels: dict[str, FloorCurve] = {}    # families the profile has no model of (MLA decode, fused MoE)
    collectives: dict[str, dict[int, CollectiveFit]] = {}          # eager: "all-reduce" -> {gpus: fit}
    collectives_graph: dict[str, dict[int, CollectiveFit]] = {}    # replayed in a CUDA graph


class TableSource(StrictModel):
    """One database table a fit read."""

    path: str = Field(min_length=1)
    sha256: str = Field(min_length=64, max_length=64)
    rows: int = Field(ge=0)                 # rows of the table
    rows_used: int = Field(ge=0)            # rows exported after the filters
    kernel_source: str                      # the table's kernel_source values that were used
    version: str                            # framework version of this table


class Provenance(StrictModel):
    package: str = Field(min_length=1)
    package_version: str = Field(min_length=1)
    license: str = Field(min_length=1)
    tables: list[TableSource] = Field(min_length=1)
    fitted: str = Field(min_length=4)
    command: str = Field(min_length=1)
    notes: list[str] = []


class KernelFamilyProfile(StrictModel):
    """``hwprofiles/kernels/<gpu>/<engine>.yaml``."""

    engine: Literal["vllm", "sglang", "trtllm"]
    version: str = Field(min_length=1)
    gpu: str = Field(min_length=1)
    provenance: Provenance
    efficiency: KernelEfficiency
    kv_fp8: KernelEfficiency | None = None
    fit_report: dict[str, dict[str, Any]] = {}


def kernels_dir() -> Path:
    """``hwprofiles/kernels`` of the checkout or the installed wheel."""
    return hwprofiles_dir() / "kernels"


def kernel_profile_path(gpu_name: str, engine_name: str, version: str | None = None) -> Path:
    """``<engine>.yaml`` (the newest tables) or ``<engine>@<version>.yaml`` (an older engine version)."""
    name = engine_name if version is None else f"{engine_name}@{version}"
    return kernels_dir() / gpu_name / f"{name}.yaml"


def kernel_versions(gpu_name: str, engine_name: str) -> list[str]:
    """Engine versions with an overlay on this GPU, the default file's first."""
    default = kernel_profile_path(gpu_name, engine_name)
    if not default.is_file():
        return []
    pinned = sorted(p.stem.split("@", 1)[1] for p in default.parent.glob(f"{engine_name}@*.yaml"))
    return [_load(str(default.resolve())).version, *pinned]


def available_kernel_profiles() -> list[tuple[str, str]]:
    """(gpu, engine) of every committed default overlay (the newest tables), sorted; older engine
    versions are ``<engine>@<version>.yaml`` beside it (:func:`kernel_versions`)."""
    root = kernels_dir()
    if not root.is_dir():
        return []
    return sorted((p.parent.name, p.stem) for p in root.glob("*/*.yaml") if "@" not in p.stem)


M = TypeVar("M", bound=StrictModel)


def read_model_file(path: Path, model: type[M], label: str) -> M:
    """A file under ``hwprofiles/`` read as ``model``; errors in one line naming the file (``label``) and
    the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise InputError(label, None, f"must be a readable YAML file ({' '.join(str(e).split())})") from None
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{label}:{where}", err.get("input"), err["msg"]) from None


@functools.lru_cache(maxsize=64)
def _load(path_str: str) -> KernelFamilyProfile:
    path = Path(path_str)
    return read_model_file(path, KernelFamilyProfile, f"kernels/{path.parent.name}/{path.name}")


def load_kernel_profile(gpu_name: str, engine_name: str, version: str | None = None) -> KernelFamilyProfile | None:
    """The overlay of ``engine_name``'s kernels on ``gpu_name`` (profile file names), for ``version``
    (None: the default file, the newest tables), or None if the GPU has none for this engine. An
    engine outside :data:`ENGINES`, or a version without an overlay on a covered GPU, is an error."""
    if engine_name not in ENGINES:
        raise InputError("engine", engine_name, f"kernel overlays exist for: {', '.join(ENGINES)}")
    path = kernel_profile_path(gpu_name, engine_name)
    if not path.is_file():
        return None
    prof = _load(str(path.resolve()))
    if version is not None and version != prof.version:
        path = kernel_profile_path(gpu_name, engine_name, version)
        if not path.is_file():
            raise InputError("deployment.engine_version", version, f"{engine_name} kernel tables on {gpu_name} "
                             f"exist for: {', '.join(kernel_versions(gpu_name, engine_name))}")
        prof = _load(str(path.resolve()))
    if prof.gpu != gpu_name or prof.engine != engine_name or version not in (None, prof.version):
        raise InputError(f"kernels/{gpu_name}/{path.name}:gpu", f"{prof.gpu}/{prof.engine} {prof.version}",
                         "must match the folder and file name")
    return prof


#: Curves of an overlay that are not applied: GEMMs. Dense layers run the same GEMM kernel classes in
#: every engine (cuBLAS/cuBLASLt, CUTLASS fp8), so a GPU keeps one GEMM source, its profile's own: our
#: torch measurements where we ran them (H100, H200; method and command in docs/guide/calibration.md), the
#: database's vLLM tables on the GPUs we have not measured. Where both exist they agree for bf16
#: (database/ours 1.01-1.07) but not for fp8 (1.33-1.95 on the same shapes, cause not established);
#: docs/validation/engines.md gives the end-to-end error with either. The fitted curves stay in the
#: files, for comparison. Attention is the engine's own kernel family and comes from its tables.
NOT_APPLIED = ("gemm_bf16", "gemm_fp8", "gemm_fp8_block", "gemm_fp4")


def _overlay(update: dict[str, Any], curves: dict[str, Curve], block: KernelEfficiency) -> None:
    curves.update({k: v for k, v in block.curves.items() if k not in NOT_APPLIED})
    if block.kernels:
        update["kernels"] = {**update.get("kernels", {}), **block.kernels}
    for key in ("attention_prefill_tiles", "attention_decode_tiles"):
        if key in block.model_fields_set:
            update[key] = getattr(block, key)


def apply_kernels(gpu: GPUProfile, k: KernelFamilyProfile, kv_dtype: str = "bf16",
                  all_reduce: str = "custom") -> GPUProfile:
    """A copy of ``gpu`` whose efficiency has the overlay applied (and ``k.kv_fp8`` on top for an fp8
    KV cache). The overlay's collectives apply when the engine runs its custom all-reduce
    (``all_reduce``: an engine's ``kernels.all_reduce``). The profile's status stays;
    ``kernel_overlay`` names the overlay."""
    if k.gpu != gpu.name:
        raise InputError("kernels.gpu", k.gpu, f"this overlay is for {k.gpu}, not {gpu.name}")
    eff = gpu.efficiency
    curves = dict(eff.curves)
    update: dict[str, Any] = {"kernels": dict(eff.kernels)} if eff.kernels else {}
    _overlay(update, curves, k.efficiency)
    fp8 = kv_dtype in KV_DTYPES_FP8 and k.kv_fp8 is not None
    if fp8:
        _overlay(update, curves, k.kv_fp8)  # type: ignore[arg-type]
    if all_reduce == "custom":
        update.update(engine_collectives=k.efficiency.collectives,
                      engine_collectives_graph=k.efficiency.collectives_graph)
    label = f"{k.engine} {k.version} kernels ({k.provenance.package} {k.provenance.package_version})"
    update.update(curves=curves, kernel_overlay=label + (", fp8 KV" if fp8 else ""))
    return gpu.model_copy(update={"efficiency": eff.model_copy(update=update)})


def with_engine_kernels(gpu: GPUProfile, tables: str | None, kv_dtype: str = "bf16",
                        all_reduce: str = "custom", version: str | None = None) -> GPUProfile:
    """``gpu`` as the engine whose measured kernel tables are ``tables`` (an engine's
    ``kernels.tables``, at ``version`` or the newest) runs it: with that overlay where one exists for
    this GPU, else unchanged."""
    if tables is None:
        return gpu
    k = load_kernel_profile(gpu.name, tables, version)
    return gpu if k is None else apply_kernels(gpu, k, kv_dtype, all_reduce)
