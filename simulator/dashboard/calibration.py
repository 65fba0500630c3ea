"""Calibration page: each GPU profile's roofline with the kernels measured on it, how well the
fitted efficiency curves predict held-out kernels, and the efficiency status of every profile."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from simulator.calibration.fit import fit, measured_s
from simulator.calibration.io import as_float, read_rows
from simulator.catalog.gpus import gpu_table, list_gpus, load_gpu
from simulator.errors import InputError, ServesimError
from simulator.inputs import check_path, is_dir

from simulator.dashboard import charts

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "calibration" / "data"
DOCS = ROOT / "docs"
VALIDATION = DOCS / "validation"
FIELD = "calibration folder"
#: Kernel CSVs plotted on the roofline, and how a row is labelled.
KERNELS = {"gemm": lambda r: f"GEMM {r.get('dtype', '')}".strip(), "attention_prefill": lambda r: "attention prefill",
           "attention_decode": lambda r: "attention decode", "memory": lambda r: f"memory ({r.get('op', '')})"}
STATUS_HELP = {"default": "documented defaults, not measured",
               "calibrated": "fitted to kernels measured on this device",
               "transferred": "fitted on another device, rescaled to this one's datasheet"}


def _stamp(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.glob("*.csv")), default=0.0)


@st.cache_data(max_entries=16, show_spinner=False)
def measured_points(folder: str, _stamp: float) -> pd.DataFrame:
    """Measured kernels of a calibration folder: kind, intensity (FLOP/byte), flops_per_s, seconds.

    Rows without FLOPs (pure copies) cannot sit on a FLOP/s roofline and are left out.
    """
    rows = []
    for name, label in KERNELS.items():
        path = Path(folder) / f"{name}.csv"
        if not path.is_file():
            continue
        for r in read_rows(path):
            flops, nbytes, sec = as_float(r["flops"]), as_float(r["bytes"]), measured_s(r)
            if flops > 0 and nbytes > 0 and sec > 0 and math.isfinite(sec):
                rows.append({"kind": label(r), "intensity": flops / nbytes, "flops_per_s": flops / sec, "seconds": sec})
    return pd.DataFrame(rows, columns=["kind", "intensity", "flops_per_s", "seconds"])


@st.cache_data(max_entries=16, show_spinner=False)
def held_out_errors(folder: str, gpu: str, _stamp: float) -> pd.DataFrame:
    """Per fitted curve: points, held-out and in-sample median / p90 absolute percentage error."""
    report = fit(folder, gpu)["report"]
    rows = []
    for kind, rep in report.items():
        if isinstance(rep, dict) and "held_out" in rep:
            rows.append({"curve": kind, "points": rep["points"],
                         "held-out median error %": round(rep["held_out"]["median_ape_pct"], 1),
                         "held-out p90 error %": round(rep["held_out"]["p90_ape_pct"], 1),
                         "in-sample median error %": round(rep["in_sample"]["median_ape_pct"], 1),
                         "efficiency min": rep["efficiency_range"][0], "efficiency max": rep["efficiency_range"][1]})
        elif kind == "collectives":
            for name, c in rep.items():
                rows.append({"curve": name, "points": c.get("points"),
                             "held-out median error %": round(c["held_out"]["median_ape_pct"], 1),
                             "held-out p90 error %": round(c["held_out"]["p90_ape_pct"], 1)})
    return pd.DataFrame(rows)


def _folder(path: Path | None) -> bool:
    """Whether ``path`` is a folder that can be listed (False for None and unreadable names)."""
    return path is not None and is_dir(path, FIELD)


def status_table(data_root: Path | None) -> pd.DataFrame:
    """One row per GPU profile: headline figures, efficiency status and where it comes from."""
    rows = []
    for r in gpu_table():
        eff = load_gpu(r["name"]).efficiency
        rows.append({"profile": r["name"], "device": r["display_name"], "status": eff.status,
                     "BF16 dense TFLOP/s": r["bf16_dense_tflops"], "memory TB/s": r["bandwidth_tbps"],
                     "measured kernels": data_root is not None and _folder(data_root / r["name"]),
                     "transferred from": eff.transferred_from or "", "efficiency source": eff.source})
    return pd.DataFrame(rows)


def whole_model_errors(df: pd.DataFrame) -> pd.DataFrame:
    """Per model and phase: points and the median / p90 absolute error (%) of predicted kernel and wall time."""
    rows = []
    for (model, phase), g in df.groupby(["model", "phase"]):
        k, w = g["kernel_err"].abs() * 100, g["wall_err"].abs() * 100
        rows.append({"model": model, "phase": phase, "points": len(g),
                     "kernel time median error %": round(k.median(), 1), "kernel p90 %": round(k.quantile(0.9), 1),
                     "wall time median error %": round(w.median(), 1), "wall p90 %": round(w.quantile(0.9), 1)})
    return pd.DataFrame(rows)


def _validation(gpu: str, folder: Path | None) -> bool:
    """The documented validation of ``gpu`` (docs/validation/*.csv); False when there is none."""
    kernels, whole = VALIDATION / "kernels.csv", VALIDATION / "whole_model.csv"
    shown = False
    if kernels.is_file():
        k = pd.read_csv(kernels)
        k = k[k["gpu"] == gpu].drop(columns="gpu")
        if len(k):
            st.markdown("**Kernels**: error of the fitted curves on held-back shapes (docs/validation/kernels.csv)")
            st.dataframe(k.rename(columns={"median_ape_pct": "median error %", "p90_ape_pct": "p90 error %"}),
                         hide_index=True, width="stretch")
            shown = True
    if whole.is_file():
        w = pd.read_csv(whole)
        w = w[w["gpu"] == gpu]
        if len(w):
            st.markdown("**Whole-model steps**: `servesim estimate` against the measured forward step "
                        "(docs/validation/whole_model.csv)")
            st.dataframe(whole_model_errors(w), hide_index=True, width="stretch")
            pts = w.rename(columns={"measured_kernel_s": "measured_s", "predicted_kernel_s": "predicted_s"})
            pts = pts.assign(point=pts["model"] + " batch " + pts["batch"].astype(str) + " × "
                             + pts["seq_or_context"].astype(str))[["point", "phase", "measured_s", "predicted_s"]]
            st.altair_chart(charts.predicted_measured_chart(pts), width="stretch")
            st.caption("Summed GPU kernel time of one forward step, predicted against measured; dashed: equal, "
                       "band: within 20%.")
            shown = True
    doc = VALIDATION / "time-model.md"
    if doc.is_file():
        with st.expander("Method and known weaknesses (docs/validation/time-model.md)"):
            st.markdown(doc.read_text(encoding="utf-8").split("## Rooflines")[0])
    for csv in sorted(folder.glob("validation*.csv")) if _folder(folder) else []:
        st.markdown(f"**{csv.name}** (from the calibration folder)")
        st.dataframe(pd.read_csv(csv), hide_index=True, width="stretch")
        shown = True
    return shown


def render() -> None:
    """Draw the Calibration page."""
    st.title("Calibration")
    st.caption("Roofline of a GPU profile: attainable FLOP/s = min(dense peak, intensity × memory bandwidth), "
               "from the profile's datasheet figures, with the kernels measured on the device by "
               "`python -m calibration` plotted where they landed.")
    with st.sidebar:
        st.header("Calibration data")
        text = st.text_input("Folder of calibration runs", str(DATA), key="calib.root",
                             help="one sub-folder per GPU profile, as written by python -m calibration --out")
        root: Path | None = None
        try:
            root = check_path(text, FIELD)
            if not is_dir(root, FIELD):
                raise InputError(FIELD, text, "no such folder")
        except InputError as err:
            st.error(str(err), icon=":material/error:")
        measured = sorted(p.name for p in root.glob("*") if is_dir(p, FIELD)) if _folder(root) else []
        gpus = list_gpus()
        default = measured[0] if measured and measured[0] in gpus else "h100-sxm"
        gpu = st.selectbox("GPU profile", gpus, index=gpus.index(default), key="calib.gpu",
                           format_func=lambda g: f"{g} (measured)" if g in measured else g)
    profile = load_gpu(gpu)
    eff = profile.efficiency
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Efficiency status", eff.status, help=STATUS_HELP[eff.status])
    c2.metric("BF16 dense peak", f"{profile.dense_tflops['bf16'].value:,.0f} TFLOP/s" if "bf16" in profile.dense_tflops
              else "n/a")
    c3.metric("Memory bandwidth", f"{profile.memory_bandwidth_tbps.value:.2f} TB/s")
    ridge = profile.peak_flops("bf16") / profile.memory_bandwidth if "bf16" in profile.dense_tflops else None
    c4.metric("BF16 ridge point", f"{ridge:.0f} FLOP/B" if ridge else "n/a",
              help="intensity where the memory roof meets the compute roof")
    st.caption(f"Efficiency source: {eff.source}" + (f" (from {eff.transferred_from})" if eff.transferred_from else ""))
    dtypes = list(profile.dense_tflops)
    shown = st.multiselect("Compute roofs", dtypes, default=[d for d in ("bf16", "fp8") if d in dtypes] or dtypes[:1],
                           key="calib.dtypes")
    folder = root / gpu if root is not None else None
    pts = measured_points(str(folder), _stamp(folder)) if _folder(folder) else None
    peaks = {d: profile.peak_flops(d) for d in shown}
    if peaks:
        st.altair_chart(charts.roofline_chart(peaks, profile.memory_bandwidth, pts), width="stretch")
    else:
        st.info("Pick at least one compute roof.")
    if pts is None:
        st.info(f"No measured kernels for {gpu}: run `python -m calibration --out {root or DATA}/{gpu} --name {gpu}` on "
                "the device to add them.")
    else:
        st.caption(f"{len(pts):,} measured kernels from {folder} (kernel time where profiled, else the event median).")
    st.subheader("Validation: predicted against measured")
    documented = _validation(gpu, folder)
    if pts is not None:
        with st.expander(f"Re-fit the curves from {folder}", expanded=not documented):
            try:
                st.dataframe(held_out_errors(str(folder), gpu, _stamp(folder)), hide_index=True, width="stretch")
                st.caption("calibration/fit.py fits each curve on 3 of every 4 rows and predicts the 4th: absolute "
                           "percentage error of predicted against measured kernel time.")
            except ServesimError as err:
                st.error(" ".join(str(err).split()))
    elif not documented:
        st.info(f"No validation results for {gpu} yet.")
    st.subheader("Efficiency status of every profile")
    table = status_table(root)
    st.dataframe(table, hide_index=True, width="stretch", height=35 * (len(table) + 1) + 3)


if __name__ == "__main__":
    render()
