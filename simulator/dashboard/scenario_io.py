"""Scenario text formats of the dashboard: YAML files, URL query parameters, uploads, error lines.

The URL of the What-if page holds a scenario's differences from the embedded default as
``dotted.key=value`` query parameters, the same overrides ``servesim run --set`` takes.
"""
from __future__ import annotations

import hashlib
import math
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from simulator.config.loader import (
    DEFAULT_SCENARIO,
    apply_overrides,
    format_validation_error,
    parse_set,
    scenario_from_dict,
    scenario_to_yaml,
)
from simulator.config.scenario import Scenario
from simulator.errors import InputError

#: Top-level scenario keys; other URL query parameters are not scenario overrides.
SCENARIO_KEYS = tuple(Scenario.model_fields)


def canonical(s: Scenario) -> dict[str, Any]:
    """Every field of a scenario (defaults and None included) as plain JSON-able values."""
    return s.model_dump(mode="json")


def default_scenario() -> Scenario:
    """The embedded default scenario (``servesim run`` without a file)."""
    return scenario_from_dict(DEFAULT_SCENARIO)


# ---------------------------------------------------------------- YAML text

def scenario_yaml(s: Scenario) -> str:
    """The scenario as a YAML file for ``servesim run`` that reads back to an equal scenario.

    That is :func:`~simulator.config.loader.scenario_to_yaml` unless it loses something (it drops
    an SLO switched off, which then reads back as the default); then switched-off SLOs are
    written as ``null``."""
    text = scenario_to_yaml(s)
    if scenario_from_dict(yaml.safe_load(text)) == s:
        return text
    data = s.model_dump(mode="json", exclude_none=True)
    data["slo"] = canonical(s)["slo"]          # keep "ttft_s: null": an SLO switched off
    if scenario_from_dict(data) == s:
        return yaml.safe_dump(data, sort_keys=False)
    return yaml.safe_dump(canonical(s), sort_keys=False)


def scenario_from_yaml(text: str, source: str = "scenario file") -> Scenario:
    """Parse and validate scenario YAML text; one-line :class:`InputError` on bad YAML or values."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise InputError(source, where, f"invalid YAML: {getattr(err, 'problem', None) or 'parse error'}") from None
    if not isinstance(data, dict):
        raise InputError(source, type(data).__name__, "a scenario file is a YAML mapping of keys")
    return scenario_from_dict(data)


# ---------------------------------------------------------------- URL query parameters

def _scalar_text(x: Any) -> str:
    if isinstance(x, str) and x and yaml.safe_load(x) == x and "," not in x:
        return x
    return yaml.safe_dump(x, default_flow_style=True, width=10**9).strip().removesuffix("...").strip()


def _diff(base: Any, new: Any, path: str, out: dict[str, Any]) -> None:
    if base == new:
        return
    same_shape = (isinstance(base, dict) and isinstance(new, dict) and set(base) == set(new)
                  and all(base.get(t) == new.get(t) for t in ("dist", "process")))
    if same_shape:
        for k in new:
            _diff(base[k], new[k], f"{path}.{k}" if path else k, out)
    else:
        if isinstance(new, dict):   # a whole section: unset optional fields and unused defaults left out
            new = {k: x for k, x in new.items() if x is not None
                   and not (k == "after_segments" and new.get("segments") is None)}
        out[path] = new


def url_params(s: Scenario) -> dict[str, str]:
    """Query parameters reproducing ``s``: its differences from the default scenario as
    ``dotted.key=value`` (the same overrides ``servesim run --set`` takes)."""
    out: dict[str, Any] = {}
    _diff(canonical(default_scenario()), canonical(s), "", out)
    params = {k: _scalar_text(x) for k, x in out.items()}
    if scenario_from_params(params) != s:   # a dropped None mattered: send whole sections
        out = {}
        full = canonical(s)
        _diff(canonical(default_scenario()), full, "", out)
        params = {k: _scalar_text(_lookup(full, k)) for k in out}
    return params


def _lookup(d: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        d = d[part]
    return d


def scenario_params(params: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters that are scenario overrides (their first dotted part is a scenario key)."""
    out = {}
    for k, v in params.items():
        if k.split(".", 1)[0] in SCENARIO_KEYS:
            out[k] = v[-1] if isinstance(v, list) else str(v)
    return out


def scenario_from_params(params: Mapping[str, Any]) -> Scenario:
    """The default scenario with the overrides of the URL query parameters applied."""
    sets = [f"{k}={v}" for k, v in scenario_params(params).items()]
    return scenario_from_dict(apply_overrides(DEFAULT_SCENARIO, parse_set(sets)))


def cli_overrides(s: Scenario) -> str:
    """The ``servesim run`` command line that reproduces ``s`` from the embedded default."""
    parts = [f"--set '{k}={v}'" if re.search(r"[\s{}\[\]:,'\"]", v) else f"--set {k}={v}"
             for k, v in url_params(s).items()]
    return " ".join(["servesim run", *parts])


# ---------------------------------------------------------------- errors and uploads

def error_line(err: Exception) -> tuple[str, str]:
    """(dotted field, one-line message) of a user-input error; field '' when none is named."""
    if isinstance(err, ValidationError):
        line = format_validation_error(err)
        return line.split(":", 1)[0], line
    if isinstance(err, InputError):
        return str(err.field), " ".join(str(err).split())
    return "", " ".join(str(err).split())


def upload_dir() -> Path:
    """Folder for uploaded files (content-addressed, so equal uploads share one path)."""
    d = Path(tempfile.gettempdir()) / "servesim-dashboard"
    d.mkdir(parents=True, exist_ok=True)
    return d


def save_upload(filename: str, data: bytes, kind: str) -> Path:
    """Store uploaded bytes under ``<upload_dir>/<kind>/<sha256[:12]>/<name>``; returns the path.

    A Hugging Face ``config.json`` is renamed ``uploaded-<hash>.json`` (the model takes the file's
    stem as its name)."""
    digest = hashlib.sha256(data).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename).stem).strip("-.") or "upload"
    suffix = Path(filename).suffix.lower()
    if kind == "models" and stem == "config":
        stem = f"uploaded-{digest[:6]}"
    path = upload_dir() / kind / digest / f"{stem}{suffix}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path


def fmt_count(x: float | None) -> str:
    """A large count with a short suffix: 9.53e8 → '953M', 1.7e9 → '1.7B' ('never' for None)."""
    if x is None:
        return "never"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def fmt_seconds(x: float | None) -> str:
    """Seconds as a short string in ms or s ('n/a' for None/NaN)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def _length_text(d: Any) -> str:
    if d is None:
        return "as recorded"
    if d.dist == "lognormal":
        return f"lognormal, median {d.median_tokens:g}"
    if d.dist == "fixed":
        return f"{d.value}"
    if d.dist == "uniform":
        return f"uniform {d.low}–{d.high}"
    if d.dist == "normal":
        return f"normal, mean {d.mean:g}"
    return f"{d.dist}"


def describe(s: Scenario) -> str:
    """One line: model, deployment, traffic, lengths and SLOs of a scenario (Markdown)."""
    d, w = s.deployment, s.workload
    a = w.arrival
    rate = f" {a.mean_rate:g} req/s" if hasattr(a, "mean_rate") else ""
    slos = ", ".join(f"{k.removesuffix('_s').upper()} {fmt_seconds(v)}" for k, v in s.slo.model_dump().items()
                     if v is not None) or "none"
    return (f"**{s.model}** on {d.replicas}× {d.gpu} (TP {d.tp}, PP {d.pp}, {d.weight_dtype}) · {a.process}{rate}"
            f" · prompt {_length_text(w.prompt_tokens)}, output {_length_text(w.output_tokens)} tokens · SLOs: {slos}")
