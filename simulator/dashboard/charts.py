"""Altair chart builders of the dashboard, and the small frame reshapes they need.

Every builder takes a tidy DataFrame (one row per mark) and returns an Altair chart; none reads
Streamlit state, so they can be tested on their own. Times are in seconds; charts show ms or s.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

#: Colours of compared configurations (Tableau 10: distinguishable and colour-blind aware).
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac"]
HEIGHT = 300


def _color(names: Sequence[str]) -> alt.Color:
    """Colour by configuration; no legend for a single one."""
    legend = alt.Legend(orient="top", title=None, labelLimit=260) if len(names) > 1 else None
    return alt.Color("config:N", scale=alt.Scale(domain=list(names), range=PALETTE[:max(len(names), 1)]),
                     legend=legend)


def ecdf(values_by_config: Mapping[str, np.ndarray], points: int = 300) -> pd.DataFrame:
    """Empirical CDFs, one per configuration: columns config, value, fraction (0..1).

    Each CDF is evaluated at ``points`` evenly spaced quantiles (all values when fewer), so the
    chart stays small for long runs; NaNs (requests that never finished) are left out.
    """
    frames = []
    for name, vals in values_by_config.items():
        x = np.sort(np.asarray(vals, dtype=float)[~np.isnan(np.asarray(vals, dtype=float))])
        if not len(x):
            continue
        frac = np.arange(1, len(x) + 1) / len(x)
        if len(x) > points:
            idx = np.unique(np.linspace(0, len(x) - 1, points).round().astype(int))
            x, frac = x[idx], frac[idx]
        frames.append(pd.DataFrame({"config": name, "value": x, "fraction": frac}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["config", "value", "fraction"])


def cdf_chart(df: pd.DataFrame, title: str, x_title: str, slo_s: float | None = None,
              names: Sequence[str] | None = None) -> alt.LayerChart | alt.Chart:
    """Step-line CDF of a latency (``ecdf`` output, seconds) with an optional vertical SLO line."""
    names = list(names or df["config"].unique())
    data = df.assign(ms=df["value"] * 1e3)
    heading = alt.TitleParams(title, subtitle=f"SLO {slo_s * 1e3:,.0f} ms (red dashed line)" if slo_s else " ")
    if slo_s is not None and len(data) and slo_s * 1e3 > 1.5 * data["ms"].max():
        heading = alt.TitleParams(title, subtitle=f"SLO {slo_s * 1e3:,.0f} ms: beyond the slowest request")
        slo_s = None
    base = alt.Chart(data, title=heading, height=HEIGHT).mark_line(interpolate="step-after").encode(
        x=alt.X("ms:Q", title=f"{x_title} (ms)", scale=alt.Scale(zero=True)),
        y=alt.Y("fraction:Q", title="fraction of requests", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
        color=_color(names),
        tooltip=[alt.Tooltip("config:N"), alt.Tooltip("ms:Q", title=f"{x_title} (ms)", format=".1f"),
                 alt.Tooltip("fraction:Q", format=".1%")])
    if slo_s is None:
        return base
    rule = alt.Chart(pd.DataFrame({"ms": [slo_s * 1e3], "label": [f"SLO {slo_s * 1e3:g} ms"]})).mark_rule(
        color="#e15759", strokeDash=[6, 4]).encode(x="ms:Q", tooltip=["label:N"])
    return alt.layer(base, rule)


def _integral(t0: np.ndarray, t1: np.ndarray, v: np.ndarray, at: np.ndarray) -> np.ndarray:
    """F(e) = sum_i v_i * |[t0_i, t1_i) ∩ [0, e)| for each e in ``at`` (exact for overlapping intervals)."""
    def ramp(start: np.ndarray) -> np.ndarray:      # sum_i v_i * max(0, e - start_i)
        order = np.argsort(start)
        s, w = start[order], v[order]
        cw, cws = np.concatenate([[0.0], np.cumsum(w)]), np.concatenate([[0.0], np.cumsum(w * s)])
        k = np.searchsorted(s, at, side="right")
        return at * cw[k] - cws[k]
    return ramp(t0) - ramp(t1)


def binned_series(ts: pd.DataFrame, bins: int = 120) -> pd.DataFrame:
    """Time averages of a run's step log over ``bins`` equal time bins.

    Input: :func:`simulator.metrics.summary.time_series` (one row per engine step or run of
    steps, each holding its values over [t_start_s, t_s)). Output columns: t_s (bin centre),
    running (requests in the batch, summed over replicas), waiting (queued requests, summed),
    kv_used_fraction (mean over replicas). Time when a replica ran no step counts as 0.
    """
    cols = ["t_s", "running", "waiting", "kv_used_fraction"]
    if ts.empty:
        return pd.DataFrame(columns=cols)
    t0, t1 = ts["t_start_s"].to_numpy(float), ts["t_s"].to_numpy(float)
    edges = np.linspace(0.0, max(float(t1.max()), 1e-9), bins + 1)
    width = edges[1] - edges[0]
    replicas = int(ts["replica"].max()) + 1
    out = {"t_s": (edges[:-1] + edges[1:]) / 2}
    for col in ("running", "waiting", "kv_used_fraction"):
        total = np.diff(_integral(t0, t1, ts[col].to_numpy(float), edges)) / width
        out[col] = total / replicas if col == "kv_used_fraction" else total
    return pd.DataFrame(out)


def series_chart(df: pd.DataFrame, field: str, title: str, y_title: str, percent: bool = False,
                 names: Sequence[str] | None = None) -> alt.Chart:
    """Line chart over simulated time of one :func:`binned_series` column, one line per config."""
    names = list(names or df["config"].unique())
    axis = alt.Axis(format="%") if percent else alt.Axis()
    return alt.Chart(df, title=title, height=HEIGHT).mark_line().encode(
        x=alt.X("t_s:Q", title="simulated time (s)"),
        y=alt.Y(f"{field}:Q", title=y_title, axis=axis),
        color=_color(names),
        tooltip=[alt.Tooltip("config:N"), alt.Tooltip("t_s:Q", title="t (s)", format=".1f"),
                 alt.Tooltip(f"{field}:Q", title=y_title, format=".1%" if percent else ".1f")])


def latency_load_chart(df: pd.DataFrame, metric: str, title: str, slo_s: float | None = None,
                       names: Sequence[str] | None = None) -> alt.LayerChart | alt.Chart:
    """Latency against achieved throughput over a sweep of arrival rates.

    ``df`` columns: config, rate (requests/s offered), throughput (output tokens/s achieved),
    metric (e.g. ``ttft``), percentile (``p50``/``p99``), value (seconds). Solid p99, dashed p50;
    a horizontal dashed red line marks the SLO.
    """
    names = list(names or df["config"].unique())
    data = df[df["metric"] == metric].assign(ms=lambda d: d["value"] * 1e3)
    sub = "solid: p99, dashed: p50" + (f", red: SLO {slo_s * 1e3:,.0f} ms" if slo_s is not None else "")
    base = alt.Chart(data, title=alt.TitleParams(title, subtitle=sub), height=HEIGHT).mark_line(point=True).encode(
        x=alt.X("throughput:Q", title="throughput (output tokens/s)"),
        y=alt.Y("ms:Q", title=f"{metric.upper()} (ms)", scale=alt.Scale(type="log")),
        color=_color(names),
        strokeDash=alt.StrokeDash("percentile:N", scale=alt.Scale(domain=["p99", "p50"], range=[[1, 0], [4, 3]]),
                                  legend=None),
        detail="percentile:N",
        tooltip=[alt.Tooltip("config:N"), alt.Tooltip("rate:Q", title="arrival rate (req/s)", format=".2f"),
                 alt.Tooltip("throughput:Q", title="output tok/s", format=",.0f"),
                 alt.Tooltip("percentile:N"), alt.Tooltip("ms:Q", title="ms", format=".1f")])
    if slo_s is None:
        return base
    rule = alt.Chart(pd.DataFrame({"ms": [slo_s * 1e3], "label": [f"SLO {slo_s * 1e3:g} ms"]})).mark_rule(
        color="#e15759", strokeDash=[6, 4]).encode(y="ms:Q", tooltip=["label:N"])
    return alt.layer(base, rule)


def roofline_chart(peaks: Mapping[str, float], bandwidth: float, points: pd.DataFrame | None = None,
                   title: str = "") -> alt.LayerChart:
    """Roofline of one device: attainable FLOP/s = min(peak, intensity × bandwidth), log-log.

    ``peaks``: dtype -> dense FLOP/s; ``bandwidth``: bytes/s. ``points`` (optional): measured
    kernels with columns intensity (FLOP/byte), flops_per_s, kind. Roofs are dark lines labelled
    at their right end; points are coloured by kind.
    """
    lo, hi = 0.25, 4096.0
    if points is not None and not points.empty:
        lo = min(lo, float(points["intensity"].min()) / 1.5)
        hi = max(hi, float(points["intensity"].max()) * 1.5)
    xs = np.geomspace(lo, hi, 160)
    lines = pd.concat([pd.DataFrame({"intensity": xs, "tflops": np.minimum(p, xs * bandwidth) / 1e12,
                                     "roof": f"{d} peak"}) for d, p in peaks.items()], ignore_index=True)
    labels = pd.DataFrame({"intensity": [hi / 1.15] * len(peaks),
                           "tflops": [p / 1e12 for p in peaks.values()],
                           "text": [f"{d} {p / 1e12:,.0f} TFLOP/s" for d, p in peaks.items()]})
    x = alt.X("intensity:Q", title="arithmetic intensity (FLOP/byte)", scale=alt.Scale(type="log", domain=[lo, hi]))
    y = alt.Y("tflops:Q", title="TFLOP/s", scale=alt.Scale(type="log"))
    layers: list[alt.Chart] = []
    if points is not None and not points.empty:
        pts = points.assign(tflops=points["flops_per_s"] / 1e12)
        layers.append(alt.Chart(pts).mark_circle(size=18, opacity=0.55).encode(
            x=x, y=y, color=alt.Color("kind:N", title="measured kernels", scale=alt.Scale(range=PALETTE),
                                      legend=alt.Legend(orient="bottom", columns=4, labelLimit=200)),
            tooltip=["kind:N", alt.Tooltip("intensity:Q", title="FLOP/byte", format=".2f"),
                     alt.Tooltip("tflops:Q", title="TFLOP/s", format=".2f")]))
    layers.append(alt.Chart(lines).mark_line(color="#222", strokeWidth=1.6).encode(
        x=x, y=y, strokeDash=alt.StrokeDash("roof:N", legend=None),
        tooltip=["roof:N", alt.Tooltip("tflops:Q", format=",.0f")]))
    top = labels["tflops"] == labels["tflops"].max()     # the highest roof labelled above its line, others below
    for part, dy in ((labels[top], -7), (labels[~top], 11)):
        if len(part):
            layers.append(alt.Chart(part).mark_text(align="right", dy=dy, fontSize=11, color="#222").encode(
                x=x, y=y, text="text:N"))
    return alt.layer(*layers, title=title).properties(height=420)


def breakeven_chart(df: pd.DataFrame, marks: pd.DataFrame | None = None,
                    volume: float | None = None) -> alt.LayerChart:
    """Daily cost against daily volume, one line per option, log-log.

    ``df``: option, tokens_per_day, usd_per_day. ``marks`` (optional): break-even points with
    option, tokens_per_day, usd_per_day. ``volume``: the volume the page prices, a dashed rule.
    """
    lo, hi = float(df["tokens_per_day"].min()), float(df["tokens_per_day"].max())
    decades = [10.0 ** k for k in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1)]
    x = alt.X("tokens_per_day:Q", title="volume (tokens per day)", scale=alt.Scale(type="log"),
              axis=alt.Axis(values=decades, labelExpr="replace(format(datum.value, '~s'), 'G', 'B')"))
    y = alt.Y("usd_per_day:Q", title="cost (USD per day)", scale=alt.Scale(type="log"), axis=alt.Axis(format="$,.2~r"))
    names = list(df["option"].unique())
    color = alt.Color("option:N", title=None, scale=alt.Scale(domain=names, range=PALETTE[:len(names)]),
                      legend=alt.Legend(orient="top", labelLimit=320, columns=2))
    layers: list[alt.Chart] = [alt.Chart(df, height=360).mark_line(strokeWidth=2).encode(
        x=x, y=y, color=color,
        tooltip=["option:N", alt.Tooltip("tokens_per_day:Q", title="tokens/day", format=",.3s"),
                 alt.Tooltip("usd_per_day:Q", title="USD/day", format="$,.2f")])]
    if marks is not None and not marks.empty:
        layers.append(alt.Chart(marks).mark_point(size=90, shape="diamond", filled=True).encode(
            x=x, y=y, color=color, tooltip=[alt.Tooltip("option:N", title="break-even with"),
                                            alt.Tooltip("tokens_per_day:Q", title="tokens/day", format=",.3s")]))
    if volume is not None:
        layers.append(alt.Chart(pd.DataFrame({"tokens_per_day": [volume]})).mark_rule(
            color="#555", strokeDash=[6, 4]).encode(x="tokens_per_day:Q", tooltip=[alt.Tooltip(
                "tokens_per_day:Q", title="priced volume", format=",.3s")]))
    return alt.layer(*layers)


def _safe(name: str) -> str:
    """A column name Vega-Lite reads as one field (it reads dots as nested access)."""
    return name.replace(".", "_").replace("[", "_").replace("]", "_")


def heatmap_chart(df: pd.DataFrame, x: str, y: str, color: str, title: str = "",
                  color_title: str | None = None) -> alt.LayerChart:
    """Heatmap of ``color`` over two swept axes (categorical), with the value written in each cell."""
    data = df.rename(columns={c: _safe(c) for c in (x, y, color)})
    sx, sy, sc = _safe(x), _safe(y), _safe(color)
    base = alt.Chart(data, title=title, height=HEIGHT + 40).encode(
        x=alt.X(f"{sx}:O", title=x, axis=alt.Axis(labelAngle=0)), y=alt.Y(f"{sy}:O", title=y))
    cells = base.mark_rect().encode(
        color=alt.Color(f"{sc}:Q", title=color_title or color, scale=alt.Scale(scheme="viridis")),
        tooltip=[alt.Tooltip(f"{sx}:O", title=x), alt.Tooltip(f"{sy}:O", title=y),
                 alt.Tooltip(f"{sc}:Q", title=color, format=".4g")])
    text = base.mark_text(fontSize=12, fontWeight="bold").encode(
        text=alt.Text(f"{sc}:Q", format=".3g"),
        color=alt.condition(f"datum['{sc}'] > {float(data[sc].median()) if len(data) else 0.0}",
                            alt.value("#222"), alt.value("white")))
    return alt.layer(cells, text)


def pareto_chart(df: pd.DataFrame, x: str, y: str, front: str = "pareto", *, tooltip: Sequence[str] = (),
                 line: bool = True, x_title: str | None = None, y_title: str | None = None,
                 x_format: str | None = None) -> alt.LayerChart:
    """Points of two metrics, the Pareto-optimal ones (boolean column ``front``) in red and, with
    ``line``, joined in order of ``x``; ``x_format`` is the d3 format of the x axis labels."""
    data = df.assign(**{front: df[front].astype(bool).map({True: "Pareto-optimal", False: "dominated"})})
    data = data.rename(columns={c: _safe(c) for c in data.columns})
    tips = [alt.Tooltip(c) for c in tooltip] + [alt.Tooltip(f"{_safe(x)}:Q", title=x, format=".4g"),
                                                alt.Tooltip(f"{_safe(y)}:Q", title=y, format=".4g")]
    ex = alt.X(f"{_safe(x)}:Q", title=x_title or x, scale=alt.Scale(zero=False),
               axis=alt.Axis(format=x_format) if x_format else alt.Undefined)
    ey = alt.Y(f"{_safe(y)}:Q", title=y_title or y, scale=alt.Scale(zero=False))
    x, front = _safe(x), _safe(front)
    pts = alt.Chart(data, height=HEIGHT + 40).mark_circle(size=70, opacity=0.85).encode(
        x=ex, y=ey, tooltip=tips,
        color=alt.Color(f"{front}:N", title=None, scale=alt.Scale(domain=["Pareto-optimal", "dominated"],
                                                                  range=["#e15759", "#9aa5b1"]),
                        legend=alt.Legend(orient="top")))
    layers = [pts]
    if line:
        on_front = data[data[front] == "Pareto-optimal"].sort_values(x)
        layers.insert(0, alt.Chart(on_front).mark_line(color="#e15759").encode(x=ex, y=ey))
    return alt.layer(*layers)


def interactivity_chart(df: pd.DataFrame, slo: float | None = None) -> alt.LayerChart:
    """Plans as output tokens/s per GPU (y) against tokens/s per user (x; columns of
    ``planning.interactivity.interactivity_points``): the front joined in red, a dashed rule at the
    TPOT SLO (``slo`` tokens/s per user)."""
    data = df.assign(front=df["on_front"].astype(bool).map({True: "on the front", False: "dominated"}))
    ex = alt.X("tokens_per_s_per_user:Q", title="tokens/s per user (1 / p99 TPOT)", scale=alt.Scale(zero=False),
               axis=alt.Axis(format=",.4~g"))
    ey = alt.Y("tokens_per_s_per_gpu:Q", title="output tokens/s per GPU", scale=alt.Scale(zero=False),
               axis=alt.Axis(format=",.4~g"))
    tips = [alt.Tooltip("candidate:N", title="plan"), alt.Tooltip("layout:N"), alt.Tooltip("gpus:Q", title="GPUs"),
            alt.Tooltip("tokens_per_s_per_gpu:Q", title="tokens/s per GPU", format=",.1f"),
            alt.Tooltip("tokens_per_s_per_user:Q", title="tokens/s per user", format=",.1f")]
    pts = alt.Chart(data, height=HEIGHT + 40).mark_point(filled=True, size=80, opacity=0.85).encode(
        x=ex, y=ey, tooltip=tips, shape=alt.Shape("layout:N", title="layout", legend=alt.Legend(orient="top")),
        color=alt.Color("front:N", title=None, scale=alt.Scale(domain=["on the front", "dominated"],
                                                               range=["#e15759", "#9aa5b1"]),
                        legend=alt.Legend(orient="top")))
    on_front = data[data["front"] == "on the front"].sort_values("tokens_per_s_per_user")
    layers: list[alt.Chart] = [alt.Chart(on_front).mark_line(color="#e15759").encode(x=ex, y=ey), pts]
    if slo:
        rule = pd.DataFrame({"slo": [slo], "label": [f"TPOT SLO: {slo:,.1f} tokens/s per user"]})
        base = alt.Chart(rule).encode(x=alt.X("slo:Q"))
        layers += [base.mark_rule(strokeDash=[6, 4], color="firebrick"),
                   base.mark_text(align="left", dx=4, dy=-6, color="firebrick").encode(
                       y=alt.value(8), text="label:N")]
    return alt.layer(*layers)


def predicted_measured_chart(df: pd.DataFrame, x: str = "measured_s", y: str = "predicted_s",
                             color: str = "phase") -> alt.LayerChart:
    """Predicted against measured times (seconds, log-log), with the y = x line and a ±20% band."""
    lo = float(min(df[x].min(), df[y].min())) / 1.3
    hi = float(max(df[x].max(), df[y].max())) * 1.3
    diag = pd.DataFrame({"t": [lo, hi]}).assign(lo=lambda d: d["t"] / 1.2, hi=lambda d: d["t"] * 1.2)
    scale = alt.Scale(type="log", domain=[lo, hi])
    band = alt.Chart(diag).mark_area(opacity=0.12, color="#59a14f").encode(
        x=alt.X("t:Q", scale=scale, title="measured (s)"), y=alt.Y("lo:Q", scale=scale, title="predicted (s)"),
        y2="hi:Q")
    line = alt.Chart(diag).mark_line(color="#555", strokeDash=[4, 3]).encode(x=alt.X("t:Q", scale=scale),
                                                                              y=alt.Y("t:Q", scale=scale))
    data = df.rename(columns={c: _safe(c) for c in df.columns})
    pts = alt.Chart(data, height=360).mark_circle(size=45, opacity=0.8).encode(
        x=alt.X(f"{_safe(x)}:Q", scale=scale), y=alt.Y(f"{_safe(y)}:Q", scale=scale),
        color=alt.Color(f"{_safe(color)}:N", title=None, legend=alt.Legend(orient="top"),
                        scale=alt.Scale(range=PALETTE)),
        tooltip=[c for c in data.columns if data[c].dtype == object]
        + [alt.Tooltip(f"{_safe(x)}:Q", format=".4g"), alt.Tooltip(f"{_safe(y)}:Q", format=".4g")])
    return alt.layer(band, line, pts)
