"""What a step model accepts (perf/step_inputs.py): formats by GPU, and one error naming the bad field."""
from __future__ import annotations

import pytest

from simulator.catalog.gpus import load_gpu
from simulator.catalog.models import load_model
from simulator.errors import InputError
from simulator.perf.ops import ExpertPlan
from simulator.perf.step_inputs import KV_DTYPES, WEIGHT_DTYPES, checked_dtypes


def _check(gpu: str, weights: str, kv: str = "bf16", pp: int = 1, cp: int = 1, model: str = "llama-3.1-8b"):
    return checked_dtypes(load_model(model), load_gpu(gpu), weight_dtype=weights, kv_dtype=kv, pp=pp, cp=cp,
                          plan=ExpertPlan())


def test_formats_and_their_tensor_cores():
    assert "nvfp4" in WEIGHT_DTYPES and "fp4" not in WEIGHT_DTYPES and "fp32" not in WEIGHT_DTYPES
    assert KV_DTYPES == ("bf16", "fp16", "fp8")
    assert _check("b200", "nvfp4") == ("fp4", None)
    assert _check("h100-sxm", "int4") == ("bf16", None)          # weight-only
    cdt, peak = _check("h100-sxm", "sparse24")
    assert cdt == "bf16" and peak == load_gpu("h100-sxm").sparse_tflops["bf16"].value * 1e12


@pytest.mark.parametrize("args, field", [
    (("h100-sxm", "nvfp4"), "weight_dtype"),
    (("h100-sxm", "fp4"), "weight_dtype"),
    (("h100-sxm", "bf16", "int8"), "kv_dtype"),
    (("h100-sxm", "bf16", "bf16", 33), "pp"),
    (("h100-sxm", "bf16", "bf16", 1, 0), "cp"),
])
def test_bad_input_names_its_field(args, field):
    with pytest.raises(InputError) as e:
        _check(*args)
    assert e.value.field == field
