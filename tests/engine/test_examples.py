"""Every scenario in examples/ runs (shortened to a few hundred requests)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator.config import load_scenario
from simulator.engine.simulate import simulate
from simulator.engine.state import DONE
from simulator.metrics.summary import summarize

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCENARIOS = sorted(p for p in EXAMPLES.glob("*.yaml") if "workload" in (yaml.safe_load(p.read_text()) or {}))


def _trace(path: Path) -> Path | None:
    arrival = (yaml.safe_load(path.read_text())["workload"] or {}).get("arrival") or {}
    return (path.parent / arrival["path"]).resolve() if arrival.get("process") == "trace" else None


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_example_runs(path: Path):
    trace = _trace(path)
    if trace is not None and not trace.exists():
        pytest.skip(f"trace {trace} not present")
    s = load_scenario(path, {"workload.requests": 150})
    res = simulate(s)
    assert (res.requests.status == DONE).sum() > 0
    summary = summarize(res)
    assert summary["completed"] + summary["rejected"] == summary["requests"]


def test_there_is_an_example_for_every_feature():
    keys = " ".join(p.read_text() for p in SCENARIOS)
    for key in ("prefix_caching", "sessions:", "prefix_aware", "disaggregation:", "speculative:", "moe:",
                "service_cache:", "cascade:", "sparse24", "cp:", "weight_dtype: fp8"):
        assert key in keys, key
