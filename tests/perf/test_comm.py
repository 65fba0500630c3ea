"""simulator/perf/comm.py: an engine's custom all-reduce below its buffer limit, NCCL above."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from simulator.catalog.engines import load_engine
from simulator.catalog.gpu import CollectiveFit, Efficiency
from simulator.catalog.gpus import load_gpu
from simulator.catalog.kernels import KernelFamilyProfile, apply_kernels
from simulator.perf.comm import collective_time

PROV = {"package": "aiconfigurator-core", "package_version": "0.12.0", "license": "Apache-2.0",
        "tables": [{"path": "systems/data/h100_sxm/comm/vllm/0.24.0/custom_allreduce_perf.parquet",
                    "sha256": "0" * 64, "rows": 10, "rows_used": 8, "kernel_source": "x (10)", "version": "0.24.0"}],
        "fitted": "2026-01-01", "command": "test"}
MIB = 1024 * 1024


def _overlay() -> KernelFamilyProfile:
    own = {"all-reduce": {4: {"latency_s": 3e-6, "bandwidth_Bps": 100e9, "max_bytes": 8 * MIB}}}
    graph = {"all-reduce": {4: {"latency_s": 2e-6, "bandwidth_Bps": 120e9, "max_bytes": 8 * MIB}}}
    return KernelFamilyProfile.model_validate({"engine": "vllm", "version": "0.24.0", "gpu": "h100-sxm",
                                               "provenance": PROV,
                                               "efficiency": {"collectives": own, "collectives_graph": graph}})


def test_custom_fit_below_the_limit_and_nccl_above() -> None:
    base = load_gpu("h100-sxm")
    nccl_g = base.efficiency.collectives_graph["all-reduce"][4]
    gpu = apply_kernels(base, _overlay())
    # 1 MiB: 3 us + 1,048,576 B / 100 GB/s = 3 + 10.48576 = 13.48576 us (eager); 2 + 8.738 us (graph)
    assert collective_time(gpu, "all-reduce", MIB, 4) == pytest.approx(13.48576e-6)
    assert collective_time(gpu, "all-reduce", MIB, 4, cuda_graph=True) == pytest.approx(2e-6 + MIB / 120e9)
    # exactly the limit still runs on the custom kernel: 3 us + 83.886 us
    assert collective_time(gpu, "all-reduce", 8 * MIB, 4) == pytest.approx(3e-6 + 8 * MIB / 100e9)
    # one byte more goes to NCCL: the profile's own fit
    n = 8 * MIB + 16
    assert collective_time(gpu, "all-reduce", n, 4) == collective_time(base, "all-reduce", n, 4)
    assert collective_time(gpu, "all-reduce", n, 4, True) == pytest.approx(nccl_g.latency_s + n / nccl_g.bandwidth_Bps)
    # group sizes and collectives the overlay lacks keep the profile's fits
    assert collective_time(gpu, "all-reduce", MIB, 2) == collective_time(base, "all-reduce", MIB, 2)
    assert collective_time(gpu, "all-gather", MIB, 4) == collective_time(base, "all-gather", MIB, 4)


def test_engine_on_nccl_ignores_the_custom_fit() -> None:
    base = load_gpu("h100-sxm")
    gpu = apply_kernels(base, _overlay(), all_reduce="nccl")
    assert not gpu.efficiency.engine_collectives
    assert collective_time(gpu, "all-reduce", MIB, 4) == collective_time(base, "all-reduce", MIB, 4)


def test_a_fit_without_a_limit_takes_every_size() -> None:
    base = load_gpu("h100-sxm")
    eff = base.efficiency.model_copy(update={"engine_collectives": {
        "all-reduce": {8: CollectiveFit(latency_s=5e-6, bandwidth_Bps=50e9)}}})
    gpu = base.model_copy(update={"efficiency": eff})
    assert collective_time(gpu, "all-reduce", 1e9, 8) == pytest.approx(5e-6 + 1e9 / 50e9)


def test_engines_with_tables_run_their_custom_all_reduce() -> None:
    for name in ("vllm", "sglang", "trtllm"):
        assert load_engine(name).kernels.all_reduce == "custom"


def test_fits_by_message_size_take_the_range_that_holds_the_message() -> None:
    base = load_gpu("h100-sxm")
    fits = [CollectiveFit(latency_s=10e-6, bandwidth_Bps=100e9, max_bytes=8 * MIB),
            CollectiveFit(latency_s=50e-6, bandwidth_Bps=200e9, max_bytes=64 * MIB),
            CollectiveFit(latency_s=80e-6, bandwidth_Bps=300e9)]
    eff = base.efficiency.model_copy(update={"collectives": {"all-reduce": {8: fits}}})
    gpu = base.model_copy(update={"efficiency": eff})
    for nbytes, f in ((MIB, fits[0]), (8 * MIB, fits[0]), (8 * MIB + 1, fits[1]), (64 * MIB, fits[1]),
                      (2**30, fits[2])):
        assert collective_time(gpu, "all-reduce", nbytes, 8) == pytest.approx(f.latency_s + nbytes / f.bandwidth_Bps)


@pytest.mark.parametrize("bad", [[{"latency_s": 1e-5, "bandwidth_Bps": 1e11}, {"latency_s": 1e-5, "bandwidth_Bps": 1e11}],
                                 [{"latency_s": 1e-5, "bandwidth_Bps": 1e11, "max_bytes": 8e6},
                                  {"latency_s": 1e-5, "bandwidth_Bps": 1e11, "max_bytes": 4e6},
                                  {"latency_s": 1e-5, "bandwidth_Bps": 1e11}],
                                 [{"latency_s": 1e-5, "bandwidth_Bps": 1e11, "max_bytes": 8e6}]])
def test_fits_by_size_must_ascend_and_end_unbounded(bad: list) -> None:
    with pytest.raises(ValidationError, match="ascending max_bytes"):
        Efficiency.model_validate({"collectives": {"all-reduce": {8: bad}}})
