"""Helpers for the dashboard tests: AppTest runs of ``app.py`` and readers of what a page shows."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
SMALL = {"workload.requests": "200"}   # keeps every simulation of the suite well under a second


def open_app(page: str | None = None, query: dict[str, str] | None = None, timeout: float = 60) -> Any:
    """Run ``app.py`` (an ``AppTest``; optionally switched to ``simulator/dashboard/<page>.py``) with URL query parameters."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.query_params.update(SMALL if query is None else query)
    at.run()
    if page is not None:
        at.switch_page(f"simulator/dashboard/{page}.py").run()
    return at


def seconds(text: str) -> float:
    """'37.7 ms' → 0.0377, '1.64 s' → 1.64."""
    m = re.fullmatch(r"([\d.,]+) (ms|s)", text.strip())
    assert m, f"not a duration: {text!r}"
    v = float(m.group(1).replace(",", ""))
    return v / 1e3 if m.group(2) == "ms" else v


def metrics(at: Any) -> dict[str, str]:
    """Metric label → shown value."""
    return {m.label: m.value for m in at.metric}


def charts(at: Any) -> list[Any]:
    """The Vega-Lite chart protos on the page (every st.altair_chart)."""
    return [c.proto for c in at.get("vega_lite_chart")]


def chart_data(proto: Any) -> list[pd.DataFrame]:
    """The datasets embedded in one chart, as DataFrames."""
    out = []
    for ds in proto.datasets:
        out.append(pa.ipc.open_stream(io.BytesIO(ds.data.data)).read_all().to_pandas())
    return out


def chart_spec(proto: Any) -> dict[str, Any]:
    return json.loads(proto.spec)


def chart_titles(at: Any) -> list[str]:
    """Titles of the charts (of the first layer when layered)."""
    out = []
    for p in charts(at):
        spec = chart_spec(p)
        layered = (layer.get("title") for layer in spec.get("layer", []) if layer.get("title"))
        title = spec.get("title") or next(layered, "")
        out.append(title if isinstance(title, str) else title.get("text", ""))
    return out


def no_exception(at: Any) -> None:
    assert not at.exception, [e.value for e in at.exception]
