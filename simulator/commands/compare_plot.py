"""The chart of ``servesim compare --plot``: measured and predicted bars per metric (altair + vl-convert)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def write_plot(rows: list[dict[str, Any]], path: str, title: str) -> Path:
    """A PNG with one panel per metric kind (latencies in ms, throughputs per second)."""
    import altair as alt
    import pandas as pd
    import vl_convert as vlc

    data = [{"metric": r["metric"], "source": src, "value": r[src] * (1.0 if r["metric"].startswith("throughput") else 1e3),
             "kind": "throughput (/s)" if r["metric"].startswith("throughput") else "latency (ms)"}
            for r in rows for src in ("measured", "predicted") if r[src] is not None]
    chart = alt.Chart(pd.DataFrame(data)).mark_bar().encode(
        x=alt.X("source:N", title=None), y=alt.Y("value:Q", title=None), color="source:N",
        column=alt.Column("metric:N", title=None)).resolve_scale(y="independent").properties(
        width=60, height=160, title=title)
    out = Path(path)
    out.write_bytes(vlc.vegalite_to_png(chart.to_json(), scale=2))
    return out
