"""`servesim estimate`: predicted time of one kernel, one collective, or one full forward step."""
from __future__ import annotations

from typing import Any

from ..catalog.engine import EngineProfile
from ..catalog.engines import load_engine
from ..catalog.gpu import GPUProfile
from ..catalog.gpus import load_gpu
from ..catalog.models import load_model
from ..errors import InputError
from .comm import collective_time
from .memory import memory_plan
from .ops import ACT_BYTES
from .roofline import log2, op_time, prefill_attention_time
from .step import BatchShape, StepModel
from .tiles import AttentionCall

OPS = ("gemm", "attention-prefill", "attention-decode", "all-reduce", "all-gather")
GEMM_DTYPES = ("bf16", "fp16", "fp8", "int8")


def positive(field: str, value: int | float | None) -> Any:
    """Check that a size is given and positive."""
    if value is None:
        raise InputError(field, None, "required for this operation")
    if value <= 0:
        raise InputError(field, value, "must be a positive number")
    return value


def _gpu_dtype(gpu: GPUProfile, dtype: str) -> None:
    if dtype not in GEMM_DTYPES:
        raise InputError("dtype", dtype, f"allowed: {', '.join(GEMM_DTYPES)}")
    if not gpu.has_dtype(dtype):
        raise InputError("dtype", dtype, f"{gpu.name} supports {', '.join(gpu.dense_tflops)}")


def estimate_op(gpu_name: str, op: str, *, m: int | None = None, k: int | None = None, n: int | None = None,
                dtype: str = "bf16", batch: int | None = None, seq: int | None = None,
                kv_len: int | None = None, q_heads: int | None = None, kv_heads: int | None = None,
                head_dim: int | None = None, nbytes: float | None = None, gpus: int | None = None,
                cuda_graph: bool = False) -> dict[str, Any]:
    """Seconds of one kernel (GEMM, attention) or one collective call on ``gpu_name``."""
    gpu = load_gpu(gpu_name)
    if op not in OPS:
        raise InputError("op", op, f"allowed: {', '.join(OPS)}")
    if op in ("all-reduce", "all-gather"):
        sec = collective_time(gpu, op, positive("bytes", nbytes), positive("gpus", gpus), cuda_graph)
        return {"op": op, "gpu": gpu.name, "seconds": sec, "breakdown": {op: sec},
                "bound": {op: "communication"}, "bytes": nbytes, "gpus": gpus, "cuda_graph": cuda_graph}
    _gpu_dtype(gpu, dtype)
    calls = 1   # kernels of the call (a split-KV prefill attention adds a combine kernel)
    if op == "gemm":
        mm, kk, nn = positive("m", m), positive("k", k), positive("n", n)
        eb = 1.0 if dtype in ("fp8", "int8") else 2.0
        flops, by = 2.0 * mm * kk * nn, (mm * kk + kk * nn) * eb + mm * nn * ACT_BYTES
        t = op_time(gpu, "gemm", flops, by, dtype, log2(mm), log2(kk * nn))
        key = "gemm"
    else:
        b, h, kvh, d = (positive("batch", batch), positive("q-heads", q_heads),
                        positive("kv-heads", kv_heads), positive("head-dim", head_dim))
        if h % kvh:
            raise InputError("kv-heads", kvh, f"must divide q-heads ({h})")
        if op == "attention-prefill":
            s = positive("seq", seq)
            pairs, q, kv, x = b * s * (s + 1) / 2, b * s, b * s, log2(s)
            kind = "attention_prefill"
        else:
            s = positive("kv-len", kv_len)
            pairs, q, kv, x = b * s, b, b * s, log2(b * kvh)
            kind = "attention_decode"
        flops = 4.0 * h * d * pairs
        by = kv * 2 * kvh * d * 2.0 + q * 2 * h * d * 2.0
        if kind == "attention_prefill":   # the step model's path: tiles over the SMs, or the curve
            t, calls = prefill_attention_time(gpu, flops, by, dtype, AttentionCall(b, h, q, kv, pairs, d, d))
        else:
            t = op_time(gpu, kind, flops, by, dtype, x, log2(kv / b))
        key = kind
    sec = max(t.seconds, gpu.efficiency.min_kernel_s * calls)
    return {"op": op, "gpu": gpu.name, "seconds": sec, "flops": t.flops, "bytes": t.bytes,
            "breakdown": {key: sec}, "bound": {key: t.bound},
            "efficiency_status": gpu.efficiency.status}


def estimate_step(model_name: str, gpu_name: str, phase: str, *, batch: int, seq: int | None = None,
                  context: int | None = None, tp: int = 1, pp: int = 1, weight_dtype: str = "bf16",
                  kv_dtype: str = "bf16", engine: str | EngineProfile = "fused") -> dict[str, Any]:
    """GPU seconds of one full forward step (per GPU, including communication) and its breakdown;
    ``engine`` is a profile name or path, or a profile itself."""
    eng = engine if isinstance(engine, EngineProfile) else load_engine(engine)
    model, gpu = load_model(model_name), load_gpu(gpu_name)
    sm = StepModel(model, gpu, eng, tp=tp, pp=pp, weight_dtype=weight_dtype, kv_dtype=kv_dtype)
    b = positive("batch", batch)
    if phase == "prefill":
        s = positive("seq", seq)
        shape = BatchShape.prefill(b, s, 0, model.sliding_window)
        tokens_needed = b * s
    elif phase == "decode":
        c = positive("context", context)
        shape = BatchShape.decode(b, c, model.sliding_window)
        tokens_needed = b * (c + 1)
    else:
        raise InputError("phase", phase, "allowed: prefill, decode")
    plan = memory_plan(model, gpu, weight_dtype, kv_dtype, tp, pp, gpu_memory_utilization=0.9,
                       max_batched_tokens=max(shape.tokens, 256))
    st = sm.price(shape, exact=True, detail=True)
    return {"model": model.name, "gpu": gpu.name, "engine": eng.name, "phase": phase, "tp": tp, "pp": pp,
            "weight_dtype": weight_dtype, "kv_dtype": kv_dtype, "batch": b, "seq": seq, "context": context,
            "seconds": st.gpu_s, "wall_seconds": st.wall_s, "kernels": st.kernels,
            "flops": st.flops, "bytes": st.bytes, "breakdown": st.breakdown, "bound": st.bound,
            "kv_cache_tokens_capacity": plan.kv_tokens, "kv_cache_tokens_needed": tokens_needed,
            "fits_kv_cache": tokens_needed <= plan.kv_tokens,
            "efficiency_status": gpu.efficiency.status}
