"""GPU profile catalog: find and load accelerator profiles by name.

Profiles live in ``hwprofiles/<name>.yaml`` (see ``hwprofiles/README.md``); short names such as
``h100`` are declared in ``hwprofiles/aliases.yaml``. Names match case-insensitively, with ``_`` and
spaces read as ``-``. ``load_gpu`` also accepts a path to a profile YAML file of the same format.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import InputError, unknown_name
from ..inputs import check_path, read_yaml
from ..paths import hwprofiles_dir
from .aliases import ALIAS_FILE, normalise as _normalise, read_aliases
from .gpu import GPUProfile

__all__ = ["gpu_table", "gpu_table_markdown", "list_gpus", "load_gpu", "load_gpu_file", "resolve_gpu_name"]





def _one_line(e: ValidationError) -> tuple[str, Any, str]:
    """(dotted location, bad input, message) of the first error, noting how many more there are."""
    errs = e.errors()
    err = errs[0]
    where = ".".join(str(p) for p in err["loc"])
    more = f" (and {len(errs) - 1} more error{'s' if len(errs) > 2 else ''})" if len(errs) > 1 else ""
    return where, err.get("input"), f"{err['msg']}{more}"


def _read_yaml(path: Path, label: str) -> Any:
    return read_yaml(path, label)


def _label(path: Path) -> str:
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


@functools.lru_cache(maxsize=None)
def _load_path(path_str: str) -> GPUProfile:
    path = Path(path_str)
    label = _label(path)
    raw = _read_yaml(path, label)
    if not isinstance(raw, dict):
        raise InputError(label, type(raw).__name__, "must be a YAML mapping describing one GPU profile")
    try:
        profile = GPUProfile.model_validate(raw)
    except ValidationError as e:
        where, bad, msg = _one_line(e)
        raise InputError(f"{label}:{where}", bad, msg) from None
    return profile


def load_gpu_file(path: str | Path) -> GPUProfile:
    """Load and validate one profile YAML file (any location). Errors name ``<dir>/<file>:<field>``."""
    p = check_path(path, "gpu").resolve()
    if not p.is_file():
        raise InputError("gpu", str(path), "no such profile file")
    return _load_path(str(p))


def _profile_files(directory: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(directory.glob("*.yaml")) if p.name != ALIAS_FILE}


def list_gpus() -> list[str]:
    """Names of the GPU profiles in ``hwprofiles/``, sorted."""
    return sorted(_profile_files(hwprofiles_dir()))


@functools.lru_cache(maxsize=8)
def _aliases(directory: str) -> dict[str, str]:
    path = Path(directory) / ALIAS_FILE
    if not path.is_file():
        return {}
    return read_aliases(_read_yaml(path, _label(path)) or {}, set(_profile_files(Path(directory))), _label(path),
                        "a profile")


def resolve_gpu_name(name: str) -> str:
    """The profile name that ``name`` (a profile name or alias, any case) refers to."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("gpu", name, f"give a GPU profile name; known: {', '.join(list_gpus())}")
    directory = hwprofiles_dir()
    key = _normalise(name)
    files = _profile_files(directory)
    if key in files:
        return key
    aliases = _aliases(str(directory))
    if key in aliases:
        return aliases[key]
    raise unknown_name("gpu", name, [*files, *aliases])


def load_gpu(name: str) -> GPUProfile:
    """A GPU profile by name or alias (case-insensitive), or from a path to a profile YAML file."""
    if isinstance(name, (str, Path)) and str(name).strip().endswith((".yaml", ".yml")):
        return load_gpu_file(name)
    resolved = resolve_gpu_name(name)  # type: ignore[arg-type]
    path = _profile_files(hwprofiles_dir())[resolved]
    profile = _load_path(str(path.resolve()))
    if profile.name != resolved:
        raise InputError(f"{_label(path)}:name", profile.name, f"must match the file name {resolved!r}")
    return profile


# ---- summary table (docs/reference/hardware.md is written from this) ------------------------------------

def gpu_table() -> list[dict[str, Any]]:
    """One row per profile: headline figures in datasheet units (TFLOP/s, GB, TB/s, GB/s, W)."""
    rows = []
    for name in list_gpus():
        g = load_gpu(name)
        bf16 = g.dense_tflops.get("bf16")
        fp8 = g.dense_tflops.get("fp8")
        rows.append({
            "name": name,
            "display_name": g.display_name,
            "kind": g.kind,
            "bf16_dense_tflops": bf16.value if bf16 else None,
            "fp8_dense_tflops": fp8.value if fp8 else None,
            "memory_gb": g.memory_gb.value,
            "bandwidth_tbps": g.memory_bandwidth_tbps.value,
            "scaleup_gbps": g.scaleup_bandwidth_gbps.value if g.scaleup_bandwidth_gbps else None,
            "host_link_gbps": g.host_link_gbps.value,
            "tdp_w": g.tdp_w.value if g.tdp_w else None,
            "efficiency": g.efficiency.status,
        })
    return rows


def gpu_table_markdown() -> str:
    """:func:`gpu_table` as a Markdown table (``-`` where a figure does not apply)."""
    cols = [("name", "Name"), ("display_name", "Device"), ("bf16_dense_tflops", "BF16 dense TFLOP/s"),
            ("fp8_dense_tflops", "FP8 dense TFLOP/s"), ("memory_gb", "Memory GB"),
            ("bandwidth_tbps", "Mem BW TB/s"), ("scaleup_gbps", "Scale-up GB/s (1 dir)"),
            ("host_link_gbps", "Host link GB/s (1 dir)"), ("tdp_w", "TDP W"), ("efficiency", "Efficiency")]

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in gpu_table():
        lines.append("| " + " | ".join(cell(r[k]) for k, _ in cols) + " |")
    return "\n".join(lines)
