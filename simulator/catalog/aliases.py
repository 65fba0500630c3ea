"""Other names for catalog entries, read from an ``aliases.yaml`` beside the data files."""
from __future__ import annotations

from typing import Any

from ..errors import InputError

ALIAS_FILE = "aliases.yaml"


def normalise(name: str) -> str:
    """Case-insensitive key: lower case, ``_`` and runs of spaces read as ``-``."""
    return "-".join(name.strip().lower().replace("_", " ").split())


def read_aliases(raw: Any, names: set[str], label: str, what: str) -> dict[str, str]:
    """``{normalised alias: entry name}`` from a parsed aliases file; ``what`` is e.g. "an engine"."""
    if not isinstance(raw, dict):
        raise InputError(label, type(raw).__name__, f"must map alias -> {what.split()[-1]} name")
    out: dict[str, str] = {}
    for alias, target in raw.items():
        if not isinstance(target, str) or target not in names:
            raise InputError(f"{label}:{alias}", target, f"must name {what}: {', '.join(sorted(names))}")
        out[normalise(str(alias))] = target
    return out
