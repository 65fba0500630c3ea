"""What a step model accepts: the weight and KV formats, and the deployment numbers it checks before
pricing anything (one :class:`~simulator.errors.InputError` naming the first bad one)."""
from __future__ import annotations

from ..catalog.gpu import GPUProfile
from ..catalog.model import ModelArch
from ..errors import InputError
from .ops import COMPUTE_DTYPE, WEIGHT_BYTES, ExpertPlan

WEIGHT_DTYPES = tuple(k for k in WEIGHT_BYTES if k not in ("fp32", "fp4"))
KV_DTYPES = ("bf16", "fp16", "fp8")


def checked_dtypes(model: ModelArch, gpu: GPUProfile, *, weight_dtype: str, kv_dtype: str, pp: int, cp: int,
             plan: ExpertPlan) -> tuple[str, float | None]:
    """The tensor-core dtype of ``weight_dtype`` on ``gpu`` and its 2:4 sparse peak (FLOP/s; None unless
    sparse24), after checking the deployment's numbers; an :class:`InputError` names the first bad one."""
    if weight_dtype not in WEIGHT_DTYPES:
        raise InputError("weight_dtype", weight_dtype, f"allowed: {', '.join(WEIGHT_DTYPES)}")
    if kv_dtype not in KV_DTYPES:
        raise InputError("kv_dtype", kv_dtype, f"allowed: {', '.join(KV_DTYPES)}")
    cdt = COMPUTE_DTYPE[weight_dtype]
    if not gpu.has_dtype(cdt):
        ok = [d for d in WEIGHT_DTYPES if gpu.has_dtype(COMPUTE_DTYPE[d])]
        raise InputError("weight_dtype", weight_dtype,
                         f"{gpu.name} has no {cdt} tensor cores; allowed on it: {', '.join(ok)}")
    sparse_peak = None
    if weight_dtype == "sparse24":
        if cdt not in gpu.sparse_tflops:
            raise InputError("weight_dtype", weight_dtype, f"{gpu.name} lists no 2:4 sparse {cdt} rate "
                             "(sparse_tflops); use a dense weight_dtype")
        sparse_peak = gpu.sparse_tflops[cdt].value * 1e12  # type: ignore[index]
    if pp < 1 or pp > model.num_layers:
        raise InputError("pp", pp, f"must be between 1 and {model.name}'s {model.num_layers} layers")
    if cp < 1:
        raise InputError("cp", cp, "must be a positive integer")
    if model.moe is None and (plan.ep > 1 or plan.balance != "uniform"):
        raise InputError("deployment.moe", model.name, "applies to mixture-of-experts models only")
    if plan.dp_attention and cp > 1:
        raise InputError("cp", cp, "context parallelism with data-parallel attention is not modelled")
    return cdt, sparse_peak

