"""The fp4 rule for database GPUs: the database's NVFP4 GEMMs reach a smaller share of their peak than
its bf16 GEMMs of theirs where both are compute-bound, so fp4 cannot take the bf16 efficiency."""
from __future__ import annotations

from calibration.kerneldb.fp4_rule import GPUS, main, mean_efficiency, rows
from simulator.catalog.kernels import load_kernel_profile


def test_nvfp4_gemms_reach_a_smaller_share_of_peak_than_bf16():
    found = {g: (bf16, fp4, ratio) for g, bf16, fp4, ratio in rows("vllm")}
    assert set(found) == set(GPUS)
    for g, (bf16, fp4, ratio) in found.items():
        assert 0.1 < fp4 < bf16 < 1.0, g
        assert abs(ratio - fp4 / bf16) < 1e-12 and ratio < 0.8, g


def test_mean_efficiency_reads_the_curve():
    c = load_kernel_profile("b200", "vllm").efficiency.curves["gemm_bf16"]
    flat = c.model_copy(update={"values": [[0.5] * len(c.x) for _ in c.y]})
    assert abs(mean_efficiency(flat) - 0.5) < 1e-12


def test_cli_prints_a_table(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(f"| {g} |" in out for g in GPUS)
