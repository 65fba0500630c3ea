"""``servesim run --concurrency ... --plot FILE.png``: latency against throughput, one point per load point.

Altair + vl-convert, as ``plan --plot`` draws. x: output tokens/s achieved; y: the mean and the
chosen percentile of TTFT and TPOT (one panel each, ms), points joined in load order and labelled
with their concurrency or offered rate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .plan_plot import plot_available


def sweep_points(flag: str, done: list[tuple[str, dict[str, Any]]], pct: str) -> list[dict[str, Any]]:
    """Long-form rows: one per load point, metric (TTFT / TPOT) and statistic (mean / ``pct``)."""
    rows = []
    for order, (name, s) in enumerate(done):
        for metric, key in (("TTFT", "ttft_s"), ("TPOT", "tpot_s")):
            for stat in ("mean", pct):
                value = s[key].get(stat)
                if value is None:
                    continue
                rows.append({flag: name, "order": order, "metric": metric, "statistic": stat,
                             "ms": float(value) * 1e3,
                             "output_tokens_per_s": float(s["throughput_output_tokens_per_s"])})
    return rows


def chart(flag: str, rows: list[dict[str, Any]], title: str) -> Any:
    """Two panels (TTFT, TPOT) of latency in ms against output tokens/s."""
    import altair as alt

    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("output_tokens_per_s:Q", title="output tokens/s (achieved)"),
        y=alt.Y("ms:Q", title="latency (ms)"),
        color=alt.Color("statistic:N", title=None), order="order:Q")
    lines = base.mark_line(point=True)
    labels = base.mark_text(dy=-9, fontSize=10).encode(text=f"{flag}:N")
    return alt.layer(lines, labels).properties(width=300, height=260).facet(
        column=alt.Column("metric:N", title=None)).resolve_scale(y="independent").properties(title=title)


def write_sweep_plot(flag: str, done: list[tuple[str, dict[str, Any]]], pct: str, path: str) -> str:
    """Write the chart as PNG (SVG when ``path`` ends in .svg); the line to print."""
    reason = plot_available()
    if reason:
        return reason
    import vl_convert as vlc

    rows = sweep_points(flag, done, pct)
    if not rows:
        return "--plot: no completed requests to draw; no chart written"
    unit = " (req/s offered)" if flag == "rate" else " (clients)"
    spec = chart(flag, rows, f"latency vs throughput, one point per {flag}{unit}").to_json()
    p = Path(path)
    if p.suffix.lower() == ".svg":
        p.write_text(vlc.vegalite_to_svg(spec))
    else:
        p.write_bytes(vlc.vegalite_to_png(spec, scale=2))
    return f"chart written to {p}"
