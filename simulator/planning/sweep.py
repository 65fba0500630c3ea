"""Sweep files: a base scenario, axes of values, filters and replications, expanded to points.

A sweep file is YAML::

    base_file: ../plan/llama8b-chat.yaml    # or base: {a scenario mapping}
    axes:                                   # dotted scenario key -> values
      deployment.tp: [1, 2, 4]
      workload.arrival.rate: {range: [2, 20, 2]}           # start, stop (included), step
      deployment.batching.max_batch_size: {geomspace: [32, 256, 4]}   # a, b, count
    filters: ["deployment.tp * deployment.pp <= 4"]
    replications: 2                          # seeds seed .. seed+1 per point

Points are the Cartesian product of the axes (first axis slowest), kept where every filter holds,
times the replications. Each point is a full, validated scenario with a content hash.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from ..config.loader import apply_overrides, read_yaml, scenario_from_dict, validate
from ..config.scenario import Scenario
from ..errors import DoesNotFitError, InputError, ServesimError
from ..inputs import check_path
from .filters import Filter, lookup
from ..schema import StrictModel

DEFAULT_MAX_POINTS = 10_000
#: Most values one axis may have, and most combinations (times replications) a sweep may examine,
#: filtered out or not: a sweep examines about 10,000 combinations a second.
MAX_AXIS_VALUES, MAX_COMBINATIONS = 1_000_000, 10_000_000


class RangeAxis(StrictModel):
    """``{range: [start, stop, step]}``: start, start+step, ... up to stop (included when on a step)."""

    range: tuple[float, float, float]


class GeomAxis(StrictModel):
    """``{geomspace: [a, b, n]}``: n values spaced evenly on a log scale from a to b (both included)."""

    geomspace: tuple[float, float, int]


class SweepSpec(StrictModel):
    """A sweep file (see the module docstring)."""

    name: str = ""
    base: dict[str, Any] | None = None
    base_file: str | None = None
    axes: dict[str, list[Any] | RangeAxis | GeomAxis]
    filters: list[str] = []
    replications: int = Field(1, ge=1, le=10_000, description="seeds per point")

    @model_validator(mode="after")
    def _one_base(self) -> "SweepSpec":
        if (self.base is None) == (self.base_file is None):
            raise ValueError("give exactly one of base (a scenario mapping) or base_file (a path)")
        return self


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its axis values, replication index and validated scenario."""

    key: str                      # content hash of the scenario (16 hex digits)
    axes: dict[str, Any]
    replication: int
    scenario: Scenario


@dataclass
class Expansion:
    """The points of a sweep, the points that failed validation, and the axes' names."""

    axes: list[str]
    points: list[Point] = field(default_factory=list)
    invalid: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    filtered_out: int = 0
    duplicates: int = 0           # points whose scenario equals an earlier point's (run once)


def _clean(v: float) -> float | int:
    r = float(f"{v:.12g}")
    return int(r) if r.is_integer() and abs(r) < 2**53 else r


def axis_values(key: str, spec: list[Any] | RangeAxis | GeomAxis) -> list[Any]:
    """The values of one axis; an :class:`InputError` naming ``axes.<key>`` when there are none."""
    field_name = f"axes.{key}"
    if isinstance(spec, list):
        values = list(spec)
    elif isinstance(spec, RangeAxis):
        start, stop, step = spec.range
        if step == 0 or not all(math.isfinite(x) for x in spec.range):
            raise InputError(field_name, list(spec.range), "range needs finite [start, stop, step] with step != 0")
        n = math.floor((stop - start) / step + 1e-9) + 1
        if n > MAX_AXIS_VALUES:
            raise InputError(field_name, list(spec.range), f"range gives more than {MAX_AXIS_VALUES:,} values")
        values = [_clean(start + i * step) for i in range(max(n, 0))]
    else:
        a, b, n = spec.geomspace
        if a <= 0 or b <= 0 or n < 1:
            raise InputError(field_name, list(spec.geomspace), "geomspace needs [a > 0, b > 0, count >= 1]")
        if n > MAX_AXIS_VALUES:
            raise InputError(field_name, list(spec.geomspace), f"geomspace gives more than {MAX_AXIS_VALUES:,} values")
        raw = np.geomspace(a, b, n)
        if float(a).is_integer() and float(b).is_integer():
            values = list(dict.fromkeys(int(round(x)) for x in raw))   # integer ends: integer values
        else:
            values = [_clean(float(x)) for x in raw]
    if not values:
        raise InputError(field_name, values if isinstance(spec, list) else spec.model_dump(),
                         "an axis needs at least one value")
    return values


def point_key(scenario: Scenario) -> str:
    """16-hex-digit hash of the scenario's content (stable across runs and machines)."""
    blob = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_sweep(path: str | Path) -> tuple[SweepSpec, dict[str, Any]]:
    """The sweep file and its base scenario mapping (``base_file`` read relative to the sweep file)."""
    p = Path(path)
    spec = validate(SweepSpec, read_yaml(p), prefix="")
    return spec, base_mapping(spec, p.parent)


def base_mapping(spec: SweepSpec, root: Path) -> dict[str, Any]:
    """The base scenario mapping of ``spec``; relative paths resolve against ``root``."""
    if spec.base is not None:
        return dict(spec.base)
    bp = check_path(spec.base_file or "", "base_file")
    bp = bp if bp.is_absolute() else root / bp
    if not bp.is_file():
        raise InputError("base_file", spec.base_file, f"no such file (looked for {bp})")
    data = read_yaml(bp)
    arrival = (data.get("workload") or {}).get("arrival") if isinstance(data.get("workload"), dict) else None
    if isinstance(arrival, dict) and isinstance(arrival.get("path"), str) and not Path(arrival["path"]).is_absolute():
        arrival["path"] = str(bp.parent / arrival["path"])
    return data


def count_points(spec: SweepSpec) -> int:
    """Points of the full product (before filters) times the replications."""
    return math.prod(len(axis_values(k, v)) for k, v in spec.axes.items()) * spec.replications


def _combos(spec: SweepSpec) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    if not spec.axes:
        raise InputError("axes", {}, "a sweep needs at least one axis (dotted scenario key -> values)")
    keys = list(spec.axes)
    values = [axis_values(k, spec.axes[k]) for k in keys]
    total = math.prod(len(v) for v in values) * spec.replications
    if total > MAX_COMBINATIONS:
        raise InputError("axes", f"{total:.3g} combinations",
                         f"a sweep examines at most {MAX_COMBINATIONS:,} combinations (times replications), "
                         "filtered out or not; narrow the axes")
    return keys, itertools.product(*values)


def expand(spec: SweepSpec, base: dict[str, Any], max_points: int | None = DEFAULT_MAX_POINTS,
           overrides: dict[str, Any] | None = None, check_catalog: bool = True) -> Expansion:
    """Expand the sweep to validated points (stops with an error past ``max_points`` points).

    ``overrides`` (dotted keys) apply to the base before the axes. Each point is validated as a
    scenario and, with ``check_catalog``, against the catalogs (model, GPU, engine, parallelism,
    precision); failures go to ``invalid`` with their one-line message. A model that does not fit
    in memory is not invalid: that shows when the point runs (a row with an error).
    """
    base = apply_overrides(base, overrides or {})
    filters = [Filter(f, f"filters[{i}]") for i, f in enumerate(spec.filters)]
    keys, combos = _combos(spec)
    out = Expansion(axes=keys)
    checked: dict[tuple, str | None] = {}
    seen: set[str] = set()
    for combo in combos:
        values = dict(zip(keys, combo))
        data = apply_overrides(base, values)
        if filters and not _keep(filters, values, data):
            out.filtered_out += 1
            continue
        try:
            scenario = scenario_from_dict(data)
            problem = _catalog_problem(scenario, checked) if check_catalog else None
        except ServesimError as err:
            problem = str(err)
        if problem:
            out.invalid.append((values, problem))
            continue
        for r in range(spec.replications):
            s = scenario if r == 0 else scenario.model_copy(update={"seed": scenario.seed + r})
            key = point_key(s)
            if key in seen:
                out.duplicates += 1
                continue
            seen.add(key)
            out.points.append(Point(key, values, r, s))
        if max_points is not None and len(out.points) > max_points:
            raise InputError("--max-points", max_points,
                             f"the sweep has more than {max_points} points; narrow the axes, raise --max-points "
                             f"or pass --yes")
    return out


def _keep(filters: list[Filter], values: dict[str, Any], data: dict[str, Any]) -> bool:
    """Whether every filter holds; keys not set by the axes or the base take the scenario defaults."""
    env = dict(values)
    dumped: dict[str, Any] | None = None
    for f in filters:
        for k in f.keys:
            if k in env:
                continue
            found, v = lookup(data, k)
            if not found:
                if dumped is None:
                    try:
                        dumped = scenario_from_dict(data).model_dump(mode="json")
                    except ServesimError:
                        dumped = {}
                found, v = lookup(dumped, k)
            if found:
                env[k] = v
        if not f(env):
            return False
    return True


def _catalog_problem(s: Scenario, cache: dict[tuple, str | None]) -> str | None:
    d = s.deployment
    key = (s.model, d.gpu, d.engine, d.tp, d.pp, d.weight_dtype, d.kv_dtype)
    if key not in cache:
        from ..engine.simulate import build_step_model
        try:
            build_step_model(s)
            cache[key] = None
        except DoesNotFitError:
            cache[key] = None
        except ServesimError as err:
            cache[key] = str(err)
    return cache[key]
