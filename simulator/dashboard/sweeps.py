"""Sweeps page: load a sweep's ``results.parquet`` (``servesim sweep --out DIR``), filter its points,
draw a heatmap of one metric over two axes, and the Pareto front of two metrics."""
from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import streamlit as st

from simulator.errors import InputError, ServesimError
from simulator.inputs import MAX_TRACE_BYTES, check_path, is_dir, is_file, read_bytes
from simulator.planning.planner import pareto_front
from simulator.planning.rows import METRIC_COLUMNS
from simulator.planning.runner import run_sweep
from simulator.planning.store import FIXED, TAIL
from simulator.planning.sweep import load_sweep

from simulator.dashboard import charts
from simulator.dashboard.scenario_io import error_line, upload_dir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "sweeps"
SOURCE = "sweeps.source"          # (label, path) of the loaded table
#: Direction of "better" for the metrics a Pareto front is usually drawn over.
HIGHER_IS_BETTER = {"throughput_requests_per_s", "throughput_output_tokens_per_s", "throughput_input_tokens_per_s",
                    "goodput_requests_per_s", "slo_attainment", "mfu", "mbu", "busy_fraction", "completed",
                    "prefix_cache_hit_rate"}
NOT_AXES = set(FIXED) | set(TAIL) | set(METRIC_COLUMNS) | {"replications", "errors"}


def axes_of(df: pd.DataFrame) -> list[str]:
    """The swept scenario keys of a results table: every column that is not bookkeeping or a metric."""
    return [c for c in df.columns if c not in NOT_AXES and not c.endswith("_ci")]


def metrics_of(df: pd.DataFrame) -> list[str]:
    """Numeric metric columns present in the table (in the order of ``rows.METRIC_COLUMNS``)."""
    return [c for c in METRIC_COLUMNS if c in df.columns and pd.api.types.is_numeric_dtype(df[c])]


@st.cache_data(max_entries=16, show_spinner=False)
def read_results(data: bytes) -> pd.DataFrame:
    """A results table from Parquet bytes; one-line error when it is not one."""
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except Exception as err:  # pyarrow raises several types for a file that is not Parquet
        raise InputError("results file", "not Parquet", f"give a results.parquet written by servesim sweep "
                                                       f"({' '.join(str(err).split())[:120]})") from None
    if not metrics_of(df):
        raise InputError("results file", f"columns {list(df.columns)[:6]}...",
                         "no metric columns (ttft_p99, goodput_requests_per_s, ...): not a sweep's results")
    return df


def run_example(path: Path) -> Path:
    """Run an example sweep (resuming if it ran before) into the upload folder; its results.parquet."""
    spec, base = load_sweep(path)
    out = upload_dir() / "sweeps" / path.stem
    bar = st.progress(0.0, text=f"Running {path.name}")

    def tick(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Running {path.name}: {done} of {total} points")

    try:
        run_sweep(spec, base, out, progress=tick, flush_every_s=1.0)
    finally:
        bar.empty()
    return out / "results.parquet"


def _read_path(path: str) -> None:
    """Load the results file at ``path`` (or ``path``/results.parquet) as the source; InputError if none."""
    field = "results path"
    p = check_path(path.strip(), field)
    if is_dir(p, field):
        p = p / "results.parquet"
    if not is_file(p, field):
        raise InputError(field, path, "no such file (give a results.parquet or its folder)")
    st.session_state[SOURCE] = (f"path {path}", str(p), read_bytes(p, field, MAX_TRACE_BYTES))
    st.query_params["results"] = path.strip()


def _source_sidebar() -> None:
    ss = st.session_state
    with st.sidebar:
        st.header("Results")
        up = st.file_uploader("Upload a results.parquet", type=["parquet"], key="sweeps.upload")
        if up is not None and ss.get(SOURCE, ("", ""))[0] != f"upload {up.file_id}":
            ss[SOURCE] = (f"upload {up.file_id}", up.name, up.getvalue())
        path = st.text_input("…or a path on this machine", key="sweeps.path",
                             value=st.query_params.get("results", ""),
                             placeholder="out/tp-rate/results.parquet")
        if path.strip() and ss.get(SOURCE, ("",))[0] != f"path {path}":
            try:
                _read_path(path)
            except InputError as err:
                st.error(error_line(err)[1], icon=":material/error:")
        examples = sorted(EXAMPLES.glob("*.yaml")) if EXAMPLES.is_dir() else []
        if examples:
            ex = st.selectbox("…or run an example sweep", examples, format_func=lambda p: p.name, key="sweeps.example")
            if st.button("Run the example", icon=":material/play_arrow:", width="stretch"):
                try:
                    p = run_example(ex)
                    ss[SOURCE] = (f"example {ex.name}", str(p), p.read_bytes())
                except ServesimError as err:
                    st.error(error_line(err)[1], icon=":material/error:")


def _filters(df: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    with st.expander("Filter the points", expanded=True):
        cols = st.columns(min(len(axes), 3) or 1)
        keep = pd.Series(True, index=df.index)
        for i, a in enumerate(axes):
            values = sorted(df[a].dropna().unique().tolist(), key=lambda v: (isinstance(v, str), v))
            chosen = cols[i % len(cols)].multiselect(a, values, default=values, key=f"sweeps.filter.{a}")
            keep &= df[a].isin(chosen)
        c1, c2 = st.columns(2)
        if "stable" in df.columns and c1.checkbox("Only stable runs (the queue stayed bounded)", key="sweeps.stable"):
            keep &= df["stable"].fillna(False).astype(bool)
        if "error" in df.columns and c2.checkbox("Only runs without an error", value=True, key="sweeps.noerror"):
            keep &= df["error"].isna() | (df["error"] == "")
    return df[keep]


def _heatmap(df: pd.DataFrame, axes: list[str], metrics: list[str]) -> None:
    st.subheader("Heatmap over two axes")
    if len(axes) < 2:
        st.info("The heatmap needs a sweep with at least two axes.")
        return
    c1, c2, c3 = st.columns(3)
    x = c1.selectbox("x axis", axes, index=len(axes) - 1, key="sweeps.hx")
    y = c2.selectbox("y axis", [a for a in axes if a != x], key="sweeps.hy")
    default = metrics.index("goodput_requests_per_s") if "goodput_requests_per_s" in metrics else 0
    m = c3.selectbox("colour", metrics, index=default, key="sweeps.hm")
    cells = df.groupby([x, y], dropna=False)[m].agg(["mean", "count"]).reset_index().rename(columns={"mean": m})
    if cells.empty:
        st.info("No points left after filtering.")
        return
    st.altair_chart(charts.heatmap_chart(cells, x, y, m), width="stretch")
    n = int(cells["count"].max())
    if n > 1:
        st.caption(f"Each cell is the mean of up to {n} runs (replications and the other axes' values).")


def pareto_mask(df: pd.DataFrame, x: str, y: str, x_max: bool, y_max: bool) -> pd.Series:
    """True for the rows on the Pareto front of (x, y) with the given directions (maximise or minimise)."""
    rows = [{"i": i, "a": (-1 if x_max else 1) * float(r[x]), "b": (-1 if y_max else 1) * float(r[y])}
            for i, r in df[[x, y]].iterrows() if not (math.isnan(r[x]) or math.isnan(r[y]))]
    front = {r["i"] for r in pareto_front(rows, ("a", "b"))}
    return pd.Series([i in front for i in df.index], index=df.index)


def _pareto(df: pd.DataFrame, axes: list[str], metrics: list[str]) -> None:
    st.subheader("Pareto front")
    c1, c2 = st.columns(2)
    def index(name: str, fallback: int) -> int:
        return metrics.index(name) if name in metrics else min(fallback, len(metrics) - 1)

    x = c1.selectbox("x metric", metrics, key="sweeps.px", index=index("throughput_output_tokens_per_s", 0))
    y = c2.selectbox("y metric", metrics, key="sweeps.py", index=index("ttft_p99", 1))
    x_max, y_max = x in HIGHER_IS_BETTER, y in HIGHER_IS_BETTER
    st.caption(f"Better is {'higher' if x_max else 'lower'} {x} and {'higher' if y_max else 'lower'} {y}.")
    data = df.dropna(subset=[x, y]).copy()
    if data.empty:
        st.info("No points with both metrics.")
        return
    data["pareto"] = pareto_mask(data, x, y, x_max, y_max)
    data["point"] = data[axes].astype(str).agg(", ".join, axis=1) if axes else data.index.astype(str)
    st.altair_chart(charts.pareto_chart(data, x, y, tooltip=["point:N"]), width="stretch")
    st.dataframe(data.loc[data["pareto"], axes + [x, y]].sort_values(x), hide_index=True, width="stretch")


def render() -> None:
    """Draw the Sweeps page."""
    st.title("Sweeps")
    st.caption("Results of `servesim sweep FILE --out DIR`: one row per point (and replication) with its axis values "
               "and metrics (seconds, per-second rates, fractions 0..1).")
    _source_sidebar()
    src = st.session_state.get(SOURCE)
    if src is None:
        st.info("Load a results.parquet in the sidebar, or run one of the example sweeps.")
        return
    try:
        df = read_results(src[2])
    except ServesimError as err:
        st.error(error_line(err)[1], icon=":material/error:")
        return
    axes, metrics = axes_of(df), metrics_of(df)
    errors = int((df["error"].notna() & (df["error"] != "")).sum()) if "error" in df.columns else 0
    st.markdown(f"**{src[1]}**: {len(df)} rows, axes {', '.join(f'`{a}`' for a in axes) or 'none'}"
                + (f", {errors} with an error" if errors else ""))
    shown = _filters(df, axes)
    _heatmap(shown, axes, metrics)
    _pareto(shown, axes, metrics)
    if errors:
        with st.expander(f"Points with an error ({errors})"):
            st.dataframe(df.loc[df["error"].notna() & (df["error"] != ""), axes + ["error"]], hide_index=True)


if __name__ == "__main__":
    render()
