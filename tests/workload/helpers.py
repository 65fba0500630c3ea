"""Paths shared by the workload tests."""
from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_TRACES = REPO_ROOT.parent / "shared" / "traces"

needs_shared_traces = pytest.mark.skipif(
    not SHARED_TRACES.is_dir(), reason=f"real traces not present at {SHARED_TRACES}"
)
