"""The What-if sidebar: scenario file upload and download, workload shape, and the scenario form.

Fields sit inside one ``st.form``, so editing them starts nothing; "Run simulation" validates the
form (a callback, before the page reruns) and makes it the current scenario. Choices that change
which fields exist (arrival process, length distributions) sit above the form. A bad value shows
``st.error`` with the simulator's one-line message under the field it names.
"""
from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from typing import Any

import streamlit as st
from pydantic import BaseModel, ValidationError

from simulator.catalog.engines import list_engines
from simulator.catalog.gpus import list_gpus
from simulator.catalog.models import list_models, load_model
from simulator.config.loader import scenario_from_dict
from simulator.config.scenario import Batching, Deployment, KVCache
from simulator.errors import ServesimError
from simulator.workload.config import ClosedLoopArrival, TraceArrival

from .scenario_io import error_line, save_upload, scenario_from_yaml, scenario_yaml
from .state import (ARRIVALS, CURRENT, DIST_LABELS, DISTS, KEPT, LENGTHS, RATE_BASED, all_widget_values,
                    from_widgets, init_widgets, key, widget_values)

ERRORS = "whatif.errors"          # {dotted field: one-line message} from the last submit or run
UPLOADS = {"model": ("models", "model"), "workload.arrival": ("traces", "workload.arrival.path"),
           "workload.prompt_tokens": ("lengths", "workload.prompt_tokens.path"),
           "workload.output_tokens": ("lengths", "workload.output_tokens.path")}
_ANY = scenario_from_dict({"workload": {"arrival": {"process": "offline"}, "requests": 1,
                                       "prompt_tokens": {"dist": "fixed", "value": 1},
                                       "output_tokens": {"dist": "fixed", "value": 1}}})
_WIDGET_PATHS = sorted(all_widget_values(_ANY)[0], key=len, reverse=True)   # every widget's dotted path
_SHORT = {"config.json": "model", "gpu": "deployment.gpu", "engine": "deployment.engine"}


def choices(model: type[BaseModel], field: str) -> list[str]:
    """The allowed values of a ``Literal`` field of a pydantic model."""
    return list(typing.get_args(model.model_fields[field].annotation))


def widget_field(field: str, message: str) -> str:
    """The dotted path of the widget an error belongs to ('' when none): the named field, a
    field ending with that name (``tp`` → ``deployment.tp``), or the first field path the message names."""
    head = field.split(":", 1)[0]
    if head in _WIDGET_PATHS:
        return head
    if head in _SHORT:
        return _SHORT[head]
    ends = [p for p in _WIDGET_PATHS if p.endswith("." + head)]
    if len(ends) == 1:
        return ends[0]
    for p in sorted(set(_WIDGET_PATHS) | set(UPLOADS), key=len, reverse=True):
        if p in (head, *message.split()) or f"{p} " in message or f"{p}:" in message:
            return p
    return head if head in UPLOADS or head == "scenario file" else ""


class ErrorBoard:
    """Errors of the form, shown under their field; what no field claims is shown at the end."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = {widget_field(f, m): m for f, m in errors.items()}
        self.shown: set[str] = set()

    def has(self, *prefixes: str) -> bool:
        return any(f == p or f.startswith(p + ".") for f in self.errors for p in prefixes)

    def show(self, path: str, section: bool = False) -> None:
        for f, msg in self.errors.items():
            if f not in self.shown and (f == path or (section and f.startswith(path + "."))):
                st.error(msg, icon=":material/error:")
                self.shown.add(f)

    def rest(self) -> None:
        for f, msg in self.errors.items():
            if f not in self.shown:
                st.error(msg, icon=":material/error:")
                self.shown.add(f)


# ---------------------------------------------------------------- callbacks

def _apply_uploads(values: dict[str, Any]) -> None:
    ss = st.session_state
    for name, (kind, target) in UPLOADS.items():
        f = ss.get(key(f"{name}.upload"))
        if f is None or ss.get(f"whatif.upload_id.{name}") == f.file_id:
            continue
        path = str(save_upload(f.name, f.getvalue(), kind))
        if name == "model":
            load_model(path)                      # a bad config.json is reported now, under the field
        values[target] = path
        ss[key(target)] = path
        ss[f"whatif.upload_id.{name}"] = f.file_id


def on_submit() -> None:
    """Form callback: validate the widgets; make them the current scenario or record the error."""
    ss = st.session_state
    current = scenario_from_yaml(ss[CURRENT])
    values = widget_values(current)
    try:
        _apply_uploads(values)
        s = scenario_from_dict(from_widgets(values, ss.get(KEPT), base=current))
    except (ServesimError, ValidationError) as err:
        field, msg = error_line(err)
        ss[ERRORS] = {field or "scenario": msg}
        return
    ss[CURRENT] = scenario_yaml(s)
    ss[ERRORS] = {}


def on_yaml_upload() -> None:
    """Uploader callback: load a scenario YAML file into the form and make it current."""
    ss = st.session_state
    f = ss.get("whatif.yaml_upload")
    if f is None:
        return
    try:
        s = scenario_from_yaml(f.getvalue().decode("utf-8"), source=f.name)
    except (ServesimError, ValidationError, UnicodeDecodeError) as err:
        ss[ERRORS] = {"scenario file": error_line(err)[1]}
        return
    ss[CURRENT] = scenario_yaml(s)
    init_widgets(s, force=True)
    ss[ERRORS] = {}


def load_into_form(yaml_text: str) -> None:
    """Make a saved scenario current and put it into the form (a button callback)."""
    s = scenario_from_yaml(yaml_text)
    st.session_state[CURRENT] = scenario_yaml(s)
    init_widgets(s, force=True)
    st.session_state[ERRORS] = {}


# ---------------------------------------------------------------- widgets

def _options(catalog: Iterable[str], current: str) -> list[str]:
    opts = list(catalog)
    return opts if current in opts else [*opts, current]


def _num(board: ErrorBoard, path: str, label: str, step: float | int, min_value: float | int | None = None,
         max_value: float | int | None = None, *, fmt: str | None = None, help: str | None = None) -> None:
    st.number_input(label, key=key(path), step=step, min_value=min_value, max_value=max_value, format=fmt, help=help)
    board.show(path)


def _select(board: ErrorBoard, path: str, label: str, options: list[Any], help: str | None = None,
            fmt: Callable[[Any], str] | None = None) -> None:
    st.selectbox(label, options, key=key(path), help=help, format_func=fmt or str)
    board.show(path)


def _upload(board: ErrorBoard, name: str, label: str, types: list[str]) -> None:
    st.file_uploader(label, type=types, key=key(f"{name}.upload"))
    board.show(name)


def _model_section(board: ErrorBoard) -> None:
    ss = st.session_state
    _select(board, "model", "Model", _options(list_models(), ss[key("model")]),
            fmt=lambda m: m if m in list_models() else f"file: {m.rsplit('/', 1)[-1]}")
    _upload(board, "model", "…or upload a Hugging Face config.json", ["json"])
    _select(board, "deployment.gpu", "GPU", _options(list_gpus(), ss[key("deployment.gpu")]))
    _select(board, "deployment.engine", "Engine profile", _options(list_engines(), ss[key("deployment.engine")]))
    c1, c2, c3 = st.columns(3)
    with c1:
        _num(board, "deployment.tp", "TP", 1, 1, help="tensor-parallel GPUs per replica")
    with c2:
        _num(board, "deployment.pp", "PP", 1, 1, help="pipeline stages per replica")
    with c3:
        _num(board, "deployment.replicas", "Replicas", 1, 1)
    c1, c2 = st.columns(2)
    with c1:
        _select(board, "deployment.weight_dtype", "Weights", choices(Deployment, "weight_dtype"),
                help="Precision of the weights: changes memory and speed only. Quantization quality loss "
                     "is out of scope of this simulator.")
    with c2:
        _select(board, "deployment.kv_dtype", "KV cache", choices(Deployment, "kv_dtype"))


def _batching_section(board: ErrorBoard) -> None:
    _select(board, "deployment.batching.policy", "Batching policy", choices(Batching, "policy"))
    c1, c2 = st.columns(2)
    with c1:
        _num(board, "deployment.batching.max_batch_size", "Max batch (requests)", 8, 1)
    with c2:
        _num(board, "deployment.batching.max_batched_tokens", "Max tokens per step", 256, 1)
    st.checkbox("Chunked prefill", key=key("deployment.batching.chunked_prefill"))
    _num(board, "deployment.batching.timeout_s", "Dynamic batching wait (s)", 0.01, 0.0, fmt="%.3f")
    c1, c2 = st.columns(2)
    with c1:
        _num(board, "deployment.kv_cache.block_size", "KV block (tokens)", 16, 1)
    with c2:
        _num(board, "deployment.kv_cache.gpu_memory_utilization", "GPU memory share", 0.05, 0.05, 1.0, fmt="%.2f")
    _select(board, "deployment.kv_cache.preemption", "Preemption", choices(KVCache, "preemption"))
    _num(board, "deployment.kv_cache.num_blocks", "KV blocks per replica (0 = from memory)", 1000, 0)
    _select(board, "deployment.router", "Router", choices(Deployment, "router"))
    _num(board, "deployment.max_outstanding_per_replica", "Max outstanding per replica (0 = no limit)", 8, 0)


def _lengths(board: ErrorBoard, p: str, label: str) -> None:
    w = f"workload.{p}."
    dist = st.session_state[key(w + "dist")]
    st.markdown(f"**{label}** · {DIST_LABELS[dist]}")
    c1, c2 = st.columns(2)
    fields = {"fixed": [("value", "tokens", 1)], "uniform": [("low", "low", 1), ("high", "high", 1)],
              "normal": [("mean", "mean", 1.0), ("std", "std", 1.0)],
              "lognormal": [("median", "median", 1.0), ("mean", "mean", 1.0)],
              "lognormal-sigma": [("median", "median", 1.0), ("sigma", "sigma (log)", 0.05)]}.get(dist, [])
    for i, (f, lab, step) in enumerate(fields):
        with (c1, c2)[i % 2]:
            _num(board, w + f, lab, step, 0 if isinstance(step, int) else 0.0)
    if dist == "empirical":
        st.text_input("file (CSV, JSONL or Parquet)", key=key(w + "path"))
        board.show(w + "path")
        st.text_input("column", key=key(w + "column"))
        board.show(w + "column")
        _upload(board, f"workload.{p}", "…or upload the file", ["csv", "jsonl", "parquet"])
    if dist != "trace":
        with c1:
            _num(board, w + "min", "min (0 = none)", 1, 0)
        with c2:
            _num(board, w + "max", "max (0 = none)", 1, 0)
    board.show(f"workload.{p}", section=True)


def _workload_section(board: ErrorBoard) -> None:
    ss = st.session_state
    w = "workload.arrival."
    proc = ss[key(w + "process")]
    if proc in RATE_BASED:
        if ss.get(key(w + "rate_mode")) == "time-varying" and ss.get(KEPT, {}).get("rate_spec"):
            st.caption("Arrival rate: time-varying, as in the loaded scenario file (edit the YAML to change it).")
        else:
            _num(board, w + "rate", "Arrival rate (requests/s)", 0.5, 0.0, fmt="%.3f")
        if proc == "gamma":
            _num(board, w + "cv", "Burstiness: CV of the gaps (1 = Poisson)", 0.25, 0.0)
    elif proc == "closed_loop":
        _num(board, w + "concurrency", "Clients", 1, 1)
        _num(board, w + "think_time_s", "Think time (s)", 0.5, 0.0)
        _select(board, w + "think_time_dist", "Think time", choices(ClosedLoopArrival, "think_time_dist"))
    elif proc == "trace":
        st.text_input("Trace file (Azure CSV or Mooncake JSONL)", key=key(w + "path"))
        board.show(w + "path")
        _upload(board, "workload.arrival", "…or upload a trace", ["csv", "jsonl"])
        c1, c2 = st.columns(2)
        with c1:
            _select(board, w + "format", "Format", choices(TraceArrival, "format"))
        with c2:
            _num(board, w + "speedup", "Speed-up", 0.5, 0.0)
    board.show("workload.arrival", section=True)
    _num(board, "workload.requests", "Requests" + (" (0 = every row)" if proc == "trace" else ""), 100, 0)
    for p, label in zip(LENGTHS, ("Prompt length (tokens)", "Output length (tokens)"), strict=True):
        _lengths(board, p, label)
    board.show("workload", section=True)


def _shape_selectors() -> None:
    ss = st.session_state
    st.selectbox("Arrival process", ARRIVALS, key=key("workload.arrival.process"),
                 help="Changing the shape shows its fields in the form below; nothing runs until you press Run.")
    if ss.get(KEPT, {}).get("rate_spec") and ss[key("workload.arrival.process")] in RATE_BASED:
        st.radio("Arrival rate", ["time-varying", "constant"], key=key("workload.arrival.rate_mode"), horizontal=True)
    dists = [d for d in DISTS if d != "trace" or ss[key("workload.arrival.process")] == "trace"]
    c1, c2 = st.columns(2)
    for col, p, label in ((c1, "prompt_tokens", "Prompt lengths"), (c2, "output_tokens", "Output lengths")):
        if ss[key(f"workload.{p}.dist")] not in dists:
            ss[key(f"workload.{p}.dist")] = "lognormal"
        with col:
            st.selectbox(label, dists, key=key(f"workload.{p}.dist"), format_func=DIST_LABELS.get)


def render_sidebar(current_yaml: str, errors: dict[str, str]) -> None:
    """Draw the sidebar of the What-if page for the current scenario and the errors to show."""
    board = ErrorBoard(errors)
    with st.sidebar:
        st.header("Scenario")
        with st.expander("Scenario file (YAML)", expanded=board.has("scenario file")):
            st.file_uploader("Load a scenario YAML", type=["yaml", "yml"], key="whatif.yaml_upload",
                             on_change=on_yaml_upload)
            board.show("scenario file")
            st.download_button("Download the current scenario", current_yaml, file_name="scenario.yaml",
                               mime="application/x-yaml", icon=":material/download:", width="stretch")
        _shape_selectors()
        with st.form("scenario_form", border=False):
            with st.expander("Model and hardware", expanded=True):
                _model_section(board)
            with st.expander("Batching and KV cache", expanded=board.has("deployment.batching",
                                                                         "deployment.kv_cache", "deployment.router",
                                                                         "deployment.max_outstanding_per_replica")):
                _batching_section(board)
            with st.expander("Workload", expanded=True):
                _workload_section(board)
            with st.expander("SLOs and seed", expanded=True):
                c1, c2, c3 = st.columns(3)
                for col, f, lab in ((c1, "ttft_s", "TTFT (s)"), (c2, "tpot_s", "TPOT (s)"), (c3, "e2e_s", "E2E (s)")):
                    with col:
                        _num(board, f"slo.{f}", lab, 0.05, 0.0, fmt="%.3f", help="0 = no objective")
                board.show("slo", section=True)
                _num(board, "seed", "Seed", 1)
                st.text_input("Name", key=key("name"))
            st.form_submit_button("Run simulation", type="primary", on_click=on_submit, width="stretch",
                                  icon=":material/play_arrow:")
        board.rest()
