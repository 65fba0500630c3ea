"""Kernel families of the Hopper whole-model traces (calibration/hopper_families.py)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from calibration.hopper_families import compare, family, measured


@pytest.mark.parametrize("name, fam", [
    ("_ZN7cutlass13device_kernelIN2at4cuda6detail25enable_3x_kernel_for_sm9xINS_4gemm6kernel13GemmUniversal"
     "INS5_17GroupProblemShapeIN4cute5tupleIJiiiEEEEENS", "grouped_gemm"),
    ("nvjet_sm90_tst_64x8_64x16_4x1_v_bz_TNT", "gemm"),
    ("cudnn_generated_fort_native_sdpa_sm80_flash_fprop_wmma_f16_knob_35", "attention"),
    ("void at::native::(anonymous namespace)::CatArrayBatchedCopy_vectorized<...>", "kv_cat"),
    ("void at::native::sbtopk::gatherTopK<float, unsigned int, 2, false>(...)", "router_topk_softmax"),
    ("void at::native::vectorized_gather_kernel<16, long>(char*, ...)", "index_gather_scatter"),
    ("void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<at::native::"
     "direct_copy_kernel_cuda(...)", "copy_cast"),
    ("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float>", "norm"),
    ("void at::native::vectorized_elementwise_kernel<8, at::native::CUDAFunctor_add<c10::BFloat16>", "elementwise"),
])
def test_kernel_names_fall_in_their_family(name, fam):
    assert family(name) == fam


def test_per_layer_time_is_the_difference_over_the_layers_added():
    rows = []
    for layers, gemm_s, cat_s in ((2, 10e-6, 4e-6), (6, 30e-6, 12e-6)):
        rows += [{"model": "m", "layers": layers, "phase": "decode", "batch": 8, "context": 1024, "cache": "c",
                  "kernel": "nvjet_x", "count": layers, "total_s": gemm_s},
                 {"model": "m", "layers": layers, "phase": "decode", "batch": 8, "context": 1024, "cache": "c",
                  "kernel": "CatArrayBatchedCopy", "count": 2 * layers, "total_s": cat_s}]
    got = measured(pd.DataFrame(rows)).set_index("family")
    assert got.loc["gemm", "measured_s"] == pytest.approx(5e-6)
    assert got.loc["kv_cat", "measured_s"] == pytest.approx(2e-6)
    assert got.loc["kv_cat", "measured_kernels"] == pytest.approx(2.0)


def test_router_and_index_families_compared_together():
    """The time model prices the routing path of transformers' grouped experts as one kind (moe_routing):
    it is compared with the sum of the measured router and index families."""
    data = Path(__file__).resolve().parents[2] / "calibration" / "data" / "h100-hopper"
    if not (data / "hopper_model_kernels.csv").is_file():
        pytest.skip("calibration/data/h100-hopper/hopper_model_kernels.csv not in this checkout")
    df = compare(data, "h100-sxm", "hf-eager")
    for model in ("qwen3-30b-a3b", "deepseek-v2-lite"):
        g = df[df["model"] == model].set_index("family")
        parts = g.loc[["router_topk_softmax", "index_gather_scatter"], "measured_s"].sum()
        assert g.loc["router_topk_softmax+index_gather_scatter", "measured_s"] == pytest.approx(parts)
        assert g.loc["router_topk_softmax+index_gather_scatter", "predicted_s"] > 0
