"""``servesim plan --plot FILE.png``: the throughput-interactivity chart (Altair + vl-convert)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..planning.interactivity import interactivity_points, slo_tokens_per_user


def plot_available() -> str | None:
    """None when Altair and vl-convert import; else the one-line reason."""
    try:
        import altair  # noqa: F401
        import vl_convert  # noqa: F401
    except ImportError:
        return "--plot needs Altair and vl-convert (pip install altair vl-convert-python); no chart written"
    return None


def chart(res: dict[str, Any]) -> Any:
    """The Altair chart: plans as points (front highlighted), the TPOT SLO as a vertical rule."""
    import altair as alt

    pts = interactivity_points(res)
    base = alt.Chart(alt.Data(values=pts))
    dots = base.mark_point(filled=True, size=70).encode(
        x=alt.X("tokens_per_s_per_user:Q", title="tokens/s per user (1 / p99 TPOT)"),
        y=alt.Y("tokens_per_s_per_gpu:Q", title="output tokens/s per GPU"),
        color=alt.Color("gpu:N", title="GPU"),
        shape=alt.Shape("on_front:N", title="on the front"),
        tooltip=["candidate:N", "gpus:Q", "tokens_per_s_per_gpu:Q", "tokens_per_s_per_user:Q"])
    layers = [dots]
    slo = slo_tokens_per_user(res)
    if slo:
        rule = alt.Chart(alt.Data(values=[{"slo": slo}])).mark_rule(strokeDash=[6, 4], color="firebrick")
        layers.append(rule.encode(x="slo:Q"))
    title = f"{res['model']} at {res['target_rate']:g} req/s" + (f" (TPOT SLO line at {slo:.1f} tok/s/user)"
                                                                  if slo else "")
    return alt.layer(*layers).properties(title=title, width=520, height=360)


def write_plot(res: dict[str, Any], path: str) -> str:
    """Write the chart as PNG (or SVG when ``path`` ends in .svg); the line to print."""
    reason = plot_available()
    if reason:
        return reason
    import vl_convert as vlc

    if not interactivity_points(res):
        return "--plot: no plans to draw; no chart written"
    spec = chart(res).to_json()
    p = Path(path)
    if p.suffix.lower() == ".svg":
        p.write_text(vlc.vegalite_to_svg(spec))
    else:
        p.write_bytes(vlc.vegalite_to_png(spec, scale=2))
    return f"chart written to {p}"
