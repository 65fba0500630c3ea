"""calibration/kerneldb/allreduce.py: custom all-reduce fits within each engine's buffer limit."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from calibration.kerneldb.allreduce import fit_allreduce, limit, mode_of
from calibration.kerneldb.source import Table

MIB = 1024 * 1024


def _table(sources: tuple[str, ...]) -> Table:
    """Custom kernel t = a + N / b up to 8 MiB; above it a much slower law (NCCL's, as the engines fall
    back), which a fit that kept those sizes would follow."""
    rows = []
    for src in sources:
        a = 20e-6 if src.endswith("eager") else 4e-6
        for g in (2, 4, 8):
            b = 100e9 / (1 + g / 8)
            for p in range(7, 30):
                n = 2 ** p
                t = a + n / b if n < 8 * MIB else 50e-6 + n / 20e9
                rows.append({"kernel_source": src, "allreduce_dtype": "bfloat16", "num_gpus": g,
                             "message_size": n, "latency": t * 1e3})
    return Table("allreduce", "9.9.9", Path("x"), "x", pd.DataFrame(rows), "0" * 64)


def test_limits_follow_the_engines_code() -> None:
    assert limit("vllm", 8) == limit("sglang", 2) == 8 * MIB - 16
    assert limit("trtllm", 2) == 16e6 and limit("trtllm", 4) == limit("trtllm", 8) == 8e6
    assert mode_of("vLLM_custom_graph") == ("graph",) and mode_of("SGLang_CustomAllReduce_eager") == ("eager",)
    assert mode_of("TRTLLM") == ("eager", "graph")


def test_fit_recovers_the_custom_kernel_and_ignores_larger_messages() -> None:
    eff, rep, used = fit_allreduce(_table(("x_custom_eager", "x_custom_graph")), "vllm")
    assert used == 2 * 3 * 16                       # 2^7 .. 2^22 (8 MiB excluded: 8 MiB - 16 is the largest)
    for key, a in (("collectives", 20e-6), ("collectives_graph", 4e-6)):
        for g in (2, 4, 8):
            f = eff[key]["all-reduce"][g]
            assert f["latency_s"] == pytest.approx(a, rel=0.02)
            assert f["bandwidth_Bps"] == pytest.approx(100e9 / (1 + g / 8), rel=0.02)
            assert f["max_bytes"] == 8 * MIB - 16
    assert rep["all-reduce/4/graph"]["holdout_median_ape"] < 1.0


def test_one_source_prices_both_modes_and_pcie_keeps_two_gpus_only() -> None:
    eff, rep, used = fit_allreduce(_table(("TRTLLM",)), "trtllm", nvlink=False)
    assert set(eff["collectives"]["all-reduce"]) == set(eff["collectives_graph"]["all-reduce"]) == {2}
    assert eff["collectives"]["all-reduce"][2] == eff["collectives_graph"]["all-reduce"][2]
    assert eff["collectives"]["all-reduce"][2]["max_bytes"] == 16e6
    assert used == 17      # 2^7 .. 2^23 <= 16e6 bytes: one table row per size, though it prices two modes
