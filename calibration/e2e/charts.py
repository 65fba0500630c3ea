"""Charts of the end-to-end comparison (Altair, saved as PNG through vl-convert)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

COLORS = {"measured": "#1f77b4", "servesim": "#d62728"}


def cdf_frame(out: dict[str, Any], metric: str) -> pd.DataFrame:
    """Empirical CDFs of ``metric`` per point: measured (all repeats) and servesim's replay."""
    parts = []
    for pt in out["points"]:
        name = pt["name"]
        for source, df in (("measured", out["measured"][name]), ("servesim", out["predicted"][name])):
            v = np.sort(df.loc[df["ok"], metric].to_numpy(dtype=float))
            v = v[np.isfinite(v)]
            if len(v):
                parts.append(pd.DataFrame({"point": name, "source": source, "seconds": v,
                                           "fraction": np.arange(1, len(v) + 1) / len(v)}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def throughput_frame(out: dict[str, Any]) -> pd.DataFrame:
    """Output tokens/s per point against the measured arrival rate (requests/s; mean over repeats).
    Closed loops: their measured completion rate (a client sends its next request when one ends)."""
    rows = []
    for pt in out["points"]:
        m = out["measured"][pt["name"]]
        if pt["kind"] == "closed":
            rate = float(np.mean([x["throughput_rps"] for x in pt["measured"]]))
        else:
            spans = [(len(g) - 1) / (g["arrival_s"].max() - g["arrival_s"].min()) for _, g in m.groupby("rep")
                     if len(g) > 1 and g["arrival_s"].max() > g["arrival_s"].min()]
            rate = float(np.mean(spans)) if spans else np.nan
        meas = np.mean([x["throughput_tok_s"] for x in pt["measured"]])
        label = f"{pt['name']}"
        rows.append({"point": label, "kind": pt["kind"], "arrival_rate": rate, "source": "measured",
                     "tokens_per_s": meas})
        rows.append({"point": label, "kind": pt["kind"], "arrival_rate": rate, "source": "servesim",
                     "tokens_per_s": pt["predicted"]["throughput_tok_s"]})
    return pd.DataFrame(rows)


def drift_frame(out: dict[str, Any], window: int = 25) -> pd.DataFrame:
    """Decode-only step wall time along each point (rolling median of ``window`` steps), measured
    and predicted from the same batch shapes."""
    s = out["steps"]
    s = s[s["kind"] == "decode only"].sort_values(["point", "rep", "t_s"])
    parts = []
    for (name, rep), g in s.groupby(["point", "rep"], sort=False):
        for source, col in (("measured", "wall_s"), ("servesim", "predicted_s")):
            parts.append(pd.DataFrame({"point": name, "rep": f"{source} {rep}", "source": source, "t_s": g["t_s"].to_numpy(),
                                       "step_ms": g[col].rolling(window, min_periods=1).median().to_numpy() * 1e3}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def write_charts(out: dict[str, Any], folder: Path, prefix: str = "e2e") -> list[Path]:
    """Write PREFIX-ttft-cdf.png, PREFIX-e2e-cdf.png, PREFIX-throughput.png and PREFIX-step-drift.png."""
    import altair as alt

    where = f"{out.get('engine', 'hf-paged')} on {out.get('device', 'GPU')}"

    folder.mkdir(parents=True, exist_ok=True)
    color = alt.Color("source:N", scale=alt.Scale(domain=list(COLORS), range=list(COLORS.values())), title=None)
    written = []
    for metric, title in (("ttft_s", "TTFT"), ("e2e_s", "end-to-end latency")):
        df = cdf_frame(out, metric)
        chart = alt.Chart(df).mark_line(interpolate="step-after").encode(
            x=alt.X("seconds:Q", title=f"{title} (s)", scale=alt.Scale(type="log" if metric == "ttft_s" else "linear")),
            y=alt.Y("fraction:Q", title="fraction of requests"), color=color,
        ).properties(width=230, height=170).facet(facet=alt.Facet("point:N", title=None), columns=2).properties(
            title=f"{title}: HF continuous batching, {where} (measured) vs servesim replay, Llama-3.1-8B")
        path = folder / f"{prefix}-{metric.split('_')[0]}-cdf.png"
        chart.save(str(path), scale_factor=2)
        written.append(path)
    tp = throughput_frame(out)
    base = alt.Chart(tp).encode(x=alt.X("arrival_rate:Q", title="arrival rate (requests/s)"),
                                y=alt.Y("tokens_per_s:Q", title="output tokens/s"), color=color)
    chart = (base.mark_line(point=True).transform_filter(alt.datum.kind == "poisson")
             + base.mark_point(shape="diamond", size=90, filled=True).transform_filter(alt.datum.kind == "closed")
             + base.mark_text(dy=-10, fontSize=9).encode(text="point:N").transform_filter(alt.datum.source == "measured")
             ).properties(width=420, height=260,
                          title=f"Throughput vs arrival rate, {where} (lines: Poisson; diamonds: closed loop)")
    path = folder / f"{prefix}-throughput.png"
    chart.save(str(path), scale_factor=2)
    written.append(path)
    dr = drift_frame(out)
    top = float(np.ceil(1.3 * dr["step_ms"].quantile(0.99) / 10) * 10) if len(dr) else 250.0
    chart = alt.Chart(dr).mark_line(clip=True).encode(
        x=alt.X("t_s:Q", title="time into the point (s)"),
        y=alt.Y("step_ms:Q", title="decode step (ms, rolling median)", scale=alt.Scale(domain=[0, top], clamp=True)),
        color=color, detail="rep:N").properties(width=230, height=150).facet(facet=alt.Facet("point:N", title=None), columns=2).properties(
        title=f"Decode-only steps, {where}: measured wall time vs servesim's step model for the same batches")
    path = folder / f"{prefix}-step-drift.png"
    chart.save(str(path), scale_factor=2)
    written.append(path)
    return written
