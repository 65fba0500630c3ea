"""Read a scenario from YAML (or the embedded default), apply ``--set`` overrides, validate.

Every failure becomes one :class:`~simulator.errors.InputError` line naming the field.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import InputError, excerpt
from ..inputs import check_path, load_yaml
from ..inputs import read_yaml as read_yaml_file
from .scenario import Scenario

#: The embedded default: Llama-3.1-8B on one H100, Poisson chat traffic whose lengths follow the
#: Azure 2023 conversation trace statistics (input mean 1,155 / median 1,020 tokens; output mean
#: 211 / median 129 tokens; Patel et al., Splitwise, ISCA 2024; CC-BY 4.0).
DEFAULT_SCENARIO: dict[str, Any] = {
    "name": "default: llama-3.1-8b on one h100-sxm, Poisson chat traffic",
    "model": "llama-3.1-8b",
    "deployment": {"gpu": "h100-sxm", "engine": "fused", "tp": 1, "replicas": 1},
    "workload": {
        "arrival": {"process": "poisson", "rate": 8.0},
        "requests": 2000,
        "prompt_tokens": {"dist": "lognormal", "median": 1020, "mean": 1155, "max": 8192},
        "output_tokens": {"dist": "lognormal", "median": 129, "mean": 211, "max": 4096},
    },
    "slo": {"ttft_s": 2.0, "tpot_s": 0.1},
    "seed": 0,
}


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """The first problem of a pydantic error as ``field.path: got VALUE; MESSAGE``."""
    e = err.errors()[0]
    loc = [str(p) for p in e.get("loc", ()) if not _is_union_tag(p)]
    field = ".".join(([prefix] if prefix else []) + loc) or prefix or "scenario"
    msg = e.get("msg", "invalid").removeprefix("Value error, ")
    if e.get("type") == "extra_forbidden":
        return f"{field}: unknown key; check the spelling (see docs/reference/scenario.md for the keys)"
    if e.get("type") == "missing":
        return f"{field}: required but missing"
    if e.get("type") == "literal_error" and "expected" in (e.get("ctx") or {}):
        msg = f"allowed: {e['ctx']['expected']}"
    value = e.get("input")
    named = re.match(r"(\w+): (.*)$", msg)   # a record-level check naming one of its keys
    if named and isinstance(value, dict) and named.group(1) in value:
        base = ".".join(([prefix] if prefix else []) + loc)
        field = f"{base}.{named.group(1)}" if base else named.group(1)
        value, msg = value[named.group(1)], named.group(2)
    shown = excerpt(value) if not isinstance(value, dict) else "{...}"
    return f"{field}: got {shown}; {msg}"


def _is_union_tag(p: Any) -> bool:
    return isinstance(p, str) and p in {"poisson", "gamma", "constant", "offline", "closed_loop", "trace",
                                        "fixed", "uniform", "normal", "lognormal", "empirical"}


def validate(model: type[BaseModel], data: Any, prefix: str = "") -> Any:
    """Validate ``data`` as ``model``; an :class:`InputError` with one line on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise _one_line(format_validation_error(err, prefix)) from None


class _LineError(InputError):
    def __init__(self, line: str) -> None:
        Exception.__init__(self, line)
        self.field, self.value, self.allowed = line.split(":", 1)[0], None, line


def _one_line(line: str) -> InputError:
    return _LineError(line)


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` → ``{"a.b": 1, "c": "x"}``; values are YAML scalars."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise InputError("--set", item, "expected dotted.key=value")
        key, raw = item.split("=", 1)
        if not key.strip():
            raise InputError("--set", item, "expected dotted.key=value")
        try:
            out[key.strip()] = load_yaml(raw, f"--set {key.strip()}") if raw.strip() else ""
        except InputError as err:
            if "invalid YAML:" not in str(err) or "nesting" in str(err):
                raise
            out[key.strip()] = raw
    return out


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (a copy); intermediate dicts are created."""
    data = copy.deepcopy(data)
    for dotted, value in overrides.items():
        node = data
        parts = dotted.split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise InputError(f"--set {dotted}", value, f"'{p}' is a value, not a section")
            node = nxt
        node[parts[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping from a file; one-line errors for missing files and bad YAML."""
    p = check_path(path, "scenario")
    if not p.exists():
        raise InputError("scenario", str(p), "no such file")
    data = read_yaml_file(p, str(p))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(str(p), type(data).__name__, "a scenario file is a YAML mapping of keys")
    return data


def scenario_from_dict(data: dict[str, Any], overrides: dict[str, Any] | None = None) -> Scenario:
    """Validate a scenario mapping after applying dotted overrides."""
    return validate(Scenario, apply_overrides(data, overrides or {}))


def load_scenario(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Scenario:
    """A scenario from a YAML file (relative trace paths resolve against the file's folder),
    or the embedded default when ``path`` is None."""
    if path is None:
        return scenario_from_dict(DEFAULT_SCENARIO, overrides)
    data = read_yaml(path)
    arrival = (data.get("workload") or {}).get("arrival") if isinstance(data.get("workload"), dict) else None
    if isinstance(arrival, dict) and isinstance(arrival.get("path"), str):
        tp = check_path(arrival["path"], "workload.arrival.path")
        if not tp.is_absolute() and (Path(path).parent / tp).exists():
            arrival["path"] = str(Path(path).parent / tp)
    return scenario_from_dict(data, overrides)


def scenario_to_yaml(s: Scenario) -> str:
    """The scenario as YAML that :func:`load_scenario` reads back to an equal scenario."""
    data = s.model_dump(mode="json", exclude_none=True)
    data["slo"] = s.slo.model_dump(mode="json")   # an SLO of null means "none", not the default
    return yaml.safe_dump(data, sort_keys=False)
