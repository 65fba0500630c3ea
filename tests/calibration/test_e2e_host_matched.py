"""compare --host-from-steps: the engine profile made from a run's own step log."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from calibration.e2e.compare import HOST_BOUND_SEQS, host_matched_engine
from calibration.e2e.profile_fit import model_terms
from simulator.catalog.engines import load_engine


def test_host_time_per_kernel_is_the_median_host_bound_decode_step_over_the_model_kernels(tmp_path: Path) -> None:
    steps = pd.DataFrame({
        "prefill_seqs": [0, 0, 0, 0, 1, 0],
        "decode_seqs": [1, 2, 4, HOST_BOUND_SEQS, 3, HOST_BOUND_SEQS + 1],
        "fwd_host_s": [0.020, 0.030, 0.025, 0.027, 0.500, 0.900],   # the chunk step and the large batch left out
    })
    path, med = host_matched_engine(steps, "hf-paged", "h200-sxm", tmp_path / "matched.yaml")
    assert med == pytest.approx(0.026)
    prof = yaml.safe_load(path.read_text())
    kernels = model_terms("hf-paged", gpu="h200-sxm")[0]
    assert prof["cpu_launch_per_kernel_s"] == pytest.approx(0.026 / kernels)
    assert prof["name"] == "matched"
    base = load_engine("hf-paged").model_dump()
    assert {k: v for k, v in prof.items() if k not in ("name", "source", "cpu_launch_per_kernel_s")} == \
        {k: v for k, v in base.items() if k not in ("name", "source", "cpu_launch_per_kernel_s")}
    assert load_engine(str(path)).cpu_launch_per_kernel_s == pytest.approx(0.026 / kernels)
