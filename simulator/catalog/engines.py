"""Engine profile catalog: how a serving framework runs a model (kernel fusion, KV layout, CPU cost).

Profiles live in ``simulator/catalog/engines/<name>.yaml``; other names for them (``vllm``,
``transformers``, ...) in ``engines/aliases.yaml``. Names match case-insensitively, with ``_`` and
spaces read as ``-``. A name ending in ``.yaml``/``.yml`` is a path to a profile of one's own (for
example one measured with ``calibration.e2e``), whose ``name`` must match its file name.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import InputError, unknown_name
from ..inputs import check_path, read_yaml
from ..paths import catalog_dir
from .aliases import ALIAS_FILE, normalise as _normalise, read_aliases
from .engine import EngineProfile

__all__ = ["list_engines", "load_engine", "resolve_engine_name"]



def _dir() -> Path:
    return catalog_dir("engines")


def _files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(_dir().glob("*.yaml")) if p.name != ALIAS_FILE}


def _read_yaml(path: Path, label: str | None = None) -> Any:
    return read_yaml(path, label or f"engines/{path.name}")


def list_engines() -> list[str]:
    """Names of the engine profiles, sorted."""
    return sorted(_files())


@functools.lru_cache(maxsize=4)
def _aliases(directory: str) -> dict[str, str]:
    path = Path(directory) / ALIAS_FILE
    if not path.is_file():
        return {}
    return read_aliases(_read_yaml(path) or {}, set(_files()), f"engines/{ALIAS_FILE}", "an engine")


def _profile_path(name: str) -> Path | None:
    """The file ``name`` points to when it is a path to a profile YAML (None for catalog names)."""
    if not name.strip().lower().endswith((".yaml", ".yml")):
        return None
    path = check_path(name.strip(), "engine")
    if not path.is_file():
        raise InputError("engine", name, "no such file; give an engine name "
                         f"({', '.join(list_engines())}) or the path of an engine profile YAML")
    return path


def resolve_engine_name(name: str) -> str:
    """The engine profile name that ``name`` (a profile name or alias, any case, or a profile file's
    path, returned as given) refers to."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("engine", name, f"give an engine name; known: {', '.join(list_engines())}")
    if _profile_path(name) is not None:
        return name
    key = _normalise(name)
    files = _files()
    if key in files:
        return key
    aliases = _aliases(str(_dir()))
    if key in aliases:
        return aliases[key]
    raise unknown_name("engine", name, [*files, *aliases])


@functools.lru_cache(maxsize=None)
def _load(path_str: str, label: str) -> EngineProfile:
    """The profile in file ``path_str``; errors name the file as ``label``."""
    path = Path(path_str)
    raw = _read_yaml(path, label)
    if not isinstance(raw, dict):
        raise InputError(label, type(raw).__name__, "must be a YAML mapping of one engine profile")
    try:
        profile = EngineProfile.model_validate(raw)
    except ValidationError as e:
        errs = e.errors()
        err = errs[0]
        where = ".".join(str(p) for p in err["loc"])
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        value = None if err["type"] == "missing" else err.get("input")
        raise InputError(f"{label}:{where}", value, err["msg"] + more) from None
    if profile.name != path.stem:
        raise InputError(f"{label}:name", profile.name, f"must match the file name {path.stem!r}")
    return profile


def load_engine(name: str, version: str | None = None) -> EngineProfile:
    """An engine profile by name or alias (case-insensitive), or from a profile YAML's path; ``version``
    pins the engine version whose measured kernel tables price its steps (default: the newest)."""
    path = _profile_path(name) if isinstance(name, str) else None
    if path is not None:
        prof = _load(str(path.resolve()), str(path))
    else:
        file = _files()[resolve_engine_name(name)]
        prof = _load(str(file.resolve()), f"engines/{file.name}")
    if version is None:
        return prof
    if prof.kernels.tables is None:
        raise InputError("deployment.engine_version", version, f"engine {prof.name} has no measured kernel tables "
                         "to pin; remove engine_version")
    return prof.model_copy(update={"kernels": prof.kernels.model_copy(update={"tables_version": str(version)})})
