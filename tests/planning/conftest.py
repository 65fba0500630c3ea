"""Shared helpers for planning tests: a small, fast scenario and sweep files written to tmp."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

#: Llama-3.1-8B on one H100 with fixed lengths: a few hundredths of a second per run.
TINY: dict[str, Any] = {
    "model": "llama-3.1-8b",
    "deployment": {"gpu": "h100-sxm"},
    "workload": {"arrival": {"process": "poisson", "rate": 5.0}, "requests": 200,
                 "prompt_tokens": {"dist": "fixed", "value": 256},
                 "output_tokens": {"dist": "fixed", "value": 32}},
    "slo": {"ttft_s": 0.5, "tpot_s": 0.05},
    "seed": 1,
}

REPO = Path(__file__).resolve().parents[2]


def tiny(**over: Any) -> dict[str, Any]:
    """A copy of :data:`TINY` with top-level keys replaced."""
    d = copy.deepcopy(TINY)
    d.update(over)
    return d


@pytest.fixture
def write_yaml(tmp_path: Path):
    def _write(name: str, data: dict[str, Any]) -> Path:
        p = tmp_path / name
        p.write_text(yaml.safe_dump(data, sort_keys=False))
        return p
    return _write


#: For planner tests: 512 in / 64 out tokens, TTFT 0.5 s, TPOT 50 ms.
PLAN = tiny(workload={"arrival": {"process": "poisson", "rate": 5.0}, "requests": 200,
                      "prompt_tokens": {"dist": "fixed", "value": 512},
                      "output_tokens": {"dist": "fixed", "value": 64}})
