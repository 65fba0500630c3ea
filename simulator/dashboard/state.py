"""Scenario ⇄ widget values, and runs cached by the scenario's YAML text.

Widget keys are ``"sc:" + <dotted scenario path>`` (``sc:deployment.tp``), so an error naming a
field can be shown under the widget that edits it. A few keys choose a structure rather than a
value: ``sc:workload.arrival.process``, ``sc:workload.arrival.rate_mode`` and
``sc:workload.{prompt,output}_tokens.dist``. In numeric fields 0 means "none" where the scenario
field is optional (SLOs, ``num_blocks``, clip limits, ``max_outstanding_per_replica``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from simulator.catalog.engines import resolve_engine_name
from simulator.catalog.gpus import resolve_gpu_name
from simulator.catalog.models import catalog_entry
from simulator.config.scenario import Scenario
from simulator.engine.simulate import simulate
from simulator.errors import InputError, ServesimError
from simulator.metrics.summary import per_request, summarize, time_series

from .scenario_io import canonical, default_scenario, scenario_from_yaml

PREFIX = "sc:"
ARRIVALS = ("poisson", "gamma", "constant", "offline", "closed_loop", "trace")
RATE_BASED = ("poisson", "gamma", "constant")
DISTS = ("lognormal", "lognormal-sigma", "fixed", "uniform", "normal", "empirical", "trace")
DIST_LABELS = {"lognormal": "lognormal (median, mean)", "lognormal-sigma": "lognormal (median, sigma)",
               "fixed": "fixed", "uniform": "uniform", "normal": "normal",
               "empirical": "empirical (column of a file)", "trace": "as recorded in the trace"}
LENGTHS = ("prompt_tokens", "output_tokens")

#: Starting values of fields that the default scenario does not set (form defaults, not data).
_STRUCT_DEFAULTS: dict[str, Any] = {
    "workload.arrival.rate_mode": "constant", "workload.arrival.rate": 8.0, "workload.arrival.cv": 2.0,
    "workload.arrival.concurrency": 16, "workload.arrival.think_time_s": 0.0,
    "workload.arrival.think_time_dist": "fixed", "workload.arrival.path": "", "workload.arrival.format": "auto",
    "workload.arrival.speedup": 1.0,
}
for _p, (_fixed, _lo, _hi, _mean, _std, _med, _sig) in {
        "prompt_tokens": (1024, 256, 2048, 1155.0, 300.0, 1020.0, 0.5),
        "output_tokens": (128, 32, 512, 211.0, 100.0, 129.0, 1.0)}.items():
    _STRUCT_DEFAULTS.update({f"workload.{_p}.{k}": v for k, v in {
        "dist": "lognormal", "value": _fixed, "low": _lo, "high": _hi, "mean": _mean, "std": _std,
        "median": _med, "sigma": _sig, "path": "", "column": "", "min": 0, "max": 0}.items()})


def key(path: str) -> str:
    """Session-state key of the widget editing a dotted scenario path."""
    return PREFIX + path


# ---------------------------------------------------------------- scenario -> widget values

def _catalog_name(resolve: Any, value: str) -> str:
    try:
        return str(resolve(value))
    except ServesimError:
        return value


def _model_name(value: str) -> str:
    try:
        return str(catalog_entry(value)["name"])
    except (ServesimError, KeyError):
        return value


def _length_widgets(p: str, d: dict[str, Any] | None) -> dict[str, Any]:
    w = f"workload.{p}."
    if d is None:
        return {w + "dist": "trace"}
    dist = d["dist"]
    out: dict[str, Any] = {w + "min": d.get("min") or 0, w + "max": d.get("max") or 0}
    if dist == "lognormal":
        out[w + "median"] = d.get("median") or d.get("p50")
        if d.get("sigma") is not None:
            dist = "lognormal-sigma"
            out[w + "sigma"] = d["sigma"]
        else:
            out[w + "mean"] = d["mean"]
    elif dist == "fixed":
        out[w + "value"] = d["value"]
    elif dist == "uniform":
        out.update({w + "low": d["low"], w + "high": d["high"]})
    elif dist == "normal":
        out.update({w + "mean": d["mean"], w + "std": d["std"]})
    elif dist == "empirical":
        out.update({w + "path": str(d["path"]), w + "column": d["column"]})
    out[w + "dist"] = dist
    return out


def to_widgets(s: Scenario) -> tuple[dict[str, Any], dict[str, Any]]:
    """Widget values (by dotted path, without the ``sc:`` prefix) for a scenario, and the parts
    no widget edits (``rate_spec``: time-varying arrival rates) kept aside to rebuild it."""
    d = canonical(s)
    dep, wl = d["deployment"], d["workload"]
    v: dict[str, Any] = {"name": d["name"], "seed": d["seed"], "model": _model_name(d["model"]),
                         "deployment.gpu": _catalog_name(resolve_gpu_name, dep["gpu"]),
                         "deployment.engine": _catalog_name(resolve_engine_name, dep["engine"])}
    for k in ("tp", "pp", "replicas", "weight_dtype", "kv_dtype", "router"):
        v[f"deployment.{k}"] = dep[k]
    v["deployment.max_outstanding_per_replica"] = dep["max_outstanding_per_replica"] or 0
    v.update({f"deployment.batching.{k}": x for k, x in dep["batching"].items()})
    v.update({f"deployment.kv_cache.{k}": x for k, x in dep["kv_cache"].items()})
    v["deployment.kv_cache.num_blocks"] = dep["kv_cache"]["num_blocks"] or 0
    v.update({f"slo.{k}": x or 0.0 for k, x in d["slo"].items()})
    a, kept = wl["arrival"], {}
    v["workload.arrival.process"] = a["process"]
    v["workload.requests"] = wl["requests"] or 0
    if a["process"] in RATE_BASED:
        if a["rate"] is None:
            kept["rate_spec"] = {k: a[k] for k in ("segments", "after_segments", "diurnal") if a.get(k) is not None}
            v["workload.arrival.rate_mode"] = "time-varying"
        else:
            v["workload.arrival.rate"] = a["rate"]
            v["workload.arrival.rate_mode"] = "constant"
    for k in ("cv", "concurrency", "think_time_s", "think_time_dist", "format", "speedup"):
        if k in a:
            v[f"workload.arrival.{k}"] = a[k]
    if "path" in a:
        v["workload.arrival.path"] = str(a["path"])
    for p in LENGTHS:
        v.update(_length_widgets(p, wl[p]))
    return v, kept


def all_widget_values(s: Scenario) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`to_widgets` filled up with starting values for the structures the scenario does not use."""
    v, kept = to_widgets(s)
    return {**_STRUCT_DEFAULTS, **v}, kept


# ---------------------------------------------------------------- widget values -> scenario

def _opt(x: Any) -> Any:
    return None if x in (0, 0.0, None, "") else x


def _length(v: Mapping[str, Any], p: str) -> dict[str, Any] | None:
    w = f"workload.{p}."
    dist = v[w + "dist"]
    if dist == "trace":
        return None
    clip = {k: int(v[w + k]) for k in ("min", "max") if _opt(v.get(w + k)) is not None}
    if dist == "lognormal":
        return {"dist": "lognormal", "median": v[w + "median"], "mean": v[w + "mean"], **clip}
    if dist == "lognormal-sigma":
        return {"dist": "lognormal", "median": v[w + "median"], "sigma": v[w + "sigma"], **clip}
    if dist == "fixed":
        return {"dist": "fixed", "value": v[w + "value"], **clip}
    if dist == "uniform":
        return {"dist": "uniform", "low": v[w + "low"], "high": v[w + "high"], **clip}
    if dist == "normal":
        return {"dist": "normal", "mean": v[w + "mean"], "std": v[w + "std"], **clip}
    if dist == "empirical":
        return {"dist": "empirical", "path": v[w + "path"], "column": v[w + "column"], **clip}
    raise InputError(f"workload.{p}.dist", dist, f"allowed: {', '.join(DISTS)}")


def _arrival(v: Mapping[str, Any], kept: Mapping[str, Any]) -> dict[str, Any]:
    w = "workload.arrival."
    proc = v[w + "process"]
    out: dict[str, Any] = {"process": proc}
    if proc in RATE_BASED:
        if v.get(w + "rate_mode") == "time-varying" and kept.get("rate_spec"):
            out.update(kept["rate_spec"])
        else:
            out["rate"] = v[w + "rate"]
        if proc == "gamma":
            out["cv"] = v[w + "cv"]
    elif proc == "closed_loop":
        out.update({k: v[w + k] for k in ("concurrency", "think_time_s", "think_time_dist")})
    elif proc == "trace":
        out.update({"path": v[w + "path"], "format": v[w + "format"], "speedup": v[w + "speedup"]})
    elif proc != "offline":
        raise InputError("workload.arrival.process", proc, f"allowed: {', '.join(ARRIVALS)}")
    return out


_WHOLE = ("workload.arrival", "workload.prompt_tokens", "workload.output_tokens")


def _overlay(base: Any, new: Any, path: str = "") -> Any:
    if path in _WHOLE or not (isinstance(base, dict) and isinstance(new, dict)):
        return new
    out = dict(base)
    for k, x in new.items():
        out[k] = _overlay(base.get(k), x, f"{path}.{k}" if path else k)
    return out


def from_widgets(v: Mapping[str, Any], kept: Mapping[str, Any] | None = None,
                 base: Scenario | None = None) -> dict[str, Any]:
    """The scenario mapping (not yet validated) that widget values (by dotted path) describe.

    Fields no widget edits are taken from ``base`` (e.g. settings added to the scenario format
    after this form), except inside the arrival and length sections, which are rebuilt whole.
    """
    if base is not None:
        return _overlay(canonical(base), from_widgets(v, kept))
    kept = kept or {}
    dep = {k: v[f"deployment.{k}"] for k in ("gpu", "engine", "tp", "pp", "replicas", "weight_dtype",
                                             "kv_dtype", "router")}
    dep["max_outstanding_per_replica"] = _opt(v["deployment.max_outstanding_per_replica"])
    dep["batching"] = {k: v[f"deployment.batching.{k}"] for k in ("policy", "max_batch_size",
                                                                  "max_batched_tokens", "chunked_prefill", "timeout_s")}
    dep["kv_cache"] = {k: v[f"deployment.kv_cache.{k}"] for k in ("block_size", "gpu_memory_utilization",
                                                                  "preemption")}
    dep["kv_cache"]["num_blocks"] = _opt(v["deployment.kv_cache.num_blocks"])
    workload = {"arrival": _arrival(v, kept), "requests": _opt(v["workload.requests"]),
                **{p: _length(v, p) for p in LENGTHS}}
    return {"name": v["name"], "seed": v["seed"], "model": v["model"], "deployment": dep, "workload": workload,
            "slo": {k: _opt(v[f"slo.{k}"]) for k in ("ttft_s", "tpot_s", "e2e_s")}}


# ---------------------------------------------------------------- session state

def init_widgets(s: Scenario, kept: Mapping[str, Any] | None = None, force: bool = False) -> None:
    """Put the widget values of ``s`` into session state: only missing keys, or all when ``force``
    (a scenario was loaded from a file or the URL). Must run before the widgets are drawn."""
    values, kept_now = all_widget_values(s)
    for path, value in values.items():
        if force or key(path) not in st.session_state:
            st.session_state[key(path)] = value
    if force or KEPT not in st.session_state:
        st.session_state[KEPT] = dict(kept if kept is not None else kept_now)


def widget_values(s: Scenario) -> dict[str, Any]:
    """Current widget values by dotted path; fields whose widget is not shown take ``s``'s values."""
    values, _ = all_widget_values(s)
    for k, v in st.session_state.items():
        if isinstance(k, str) and k.startswith(PREFIX):
            values[k[len(PREFIX):]] = v
    return values


KEPT = "whatif.kept"          # parts of the scenario no widget edits (time-varying rates)
CURRENT = "whatif.current"    # YAML text of the What-if page's scenario, which the other pages start from


def constant_rate_error(s: Scenario, purpose: str) -> str | None:
    """One-line error when ``s`` has no constant-rate arrivals (the planner and pricing need a rate)."""
    a = s.workload.arrival
    if a.process in RATE_BASED and getattr(a, "rate", None) is not None:
        return None
    return str(InputError("workload.arrival.process", a.process, f"{purpose} needs poisson, gamma or constant "
                          "arrivals with a constant rate (set one on the What-if page)"))


def current_scenario() -> Scenario:
    """The What-if page's scenario (the embedded default until that page has run)."""
    text = st.session_state.get(CURRENT)
    return scenario_from_yaml(text) if text else default_scenario()


def show_errors(errors: Mapping[str, str], *fields: str) -> None:
    """``st.error`` for each error recorded for one of ``fields`` (call right under the widget)."""
    for f in fields:
        if f in errors:
            st.error(errors[f], icon=":material/error:")


# ---------------------------------------------------------------- cached runs

@dataclass(frozen=True)
class RunOutput:
    """What the pages show of one simulation run (pickled into the cache)."""

    summary: dict[str, Any]          # simulator.metrics.summary.summarize
    requests: pd.DataFrame           # per_request: one row per request, seconds and tokens
    series: pd.DataFrame             # time_series: one row per engine step (or run of steps)
    gpus: int                        # GPUs of the whole deployment


def _progress_tick(label: str) -> tuple[Callable[[int, int], None], Any]:
    bar = st.progress(0.0, text=f"{label}: starting")
    last = [0]

    def tick(done: int, total: int) -> None:
        if done == total or done - last[0] >= max(1, total // 40):
            last[0] = done
            bar.progress(min(done / max(total, 1), 1.0), text=f"{label}: {done:,} of {total:,} requests finished")

    return tick, bar


@st.cache_data(max_entries=256, show_spinner=False)
def run_scenario(yaml_text: str, _label: str = "Simulating") -> RunOutput:
    """Simulate the scenario in ``yaml_text`` (cached by that text), with a progress bar while it runs.

    Raises the simulator's one-line :class:`~simulator.errors.ServesimError` on bad input.
    """
    s = scenario_from_yaml(yaml_text)
    tick, bar = _progress_tick(_label)
    try:
        res = simulate(s, progress=tick)
    finally:
        bar.empty()
    df = per_request(res)
    return RunOutput(summarize(res, df), df, time_series(res), res.total_gpus or res.gpus_per_replica * s.deployment.replicas)
