"""The batch limits ``trtllm-bench throughput`` launches TensorRT-LLM with when none are given.

TensorRT-LLM's published throughput tables come from ``trtllm-bench ... throughput`` without
``--max_batch_size`` or ``--max_num_tokens`` (the commands of its performance overview). The
benchmark then sizes both from the model, the GPUs and the dataset's lengths
(``tensorrt_llm/bench/build/tuning.py``, ``calc_engine_setting`` and ``finetune_setting``, read
2026-12-07 at NVIDIA/TensorRT-LLM 04cba882 and a7e572fb, identical there): the KV cache the free
memory holds, in requests of ``isl + osl`` tokens, capped at 4,096 and divided over the pipeline
stages, rounded up, is the batch size per micro-batch, and that batch times ``1 + isl / osl``
tokens, capped at 32,768, rounded up and at least 2,048, is the token budget per step. This module
repeats that arithmetic with servesim's catalog model and GPU.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from simulator.catalog.gpus import load_gpu
from simulator.catalog.models import load_model
from simulator.perf.memory import param_count

#: tuning.py BYTES_PER_ELEM: weight (and KV) bytes per element by quantisation; others count 2.
BYTES_PER_ELEM = {"bf16": 2.0, "fp8": 1.0, "nvfp4": 0.5}
#: calc_engine_setting's kv_cache_gpu_mem_fraction default (the overview also passes 0.95 "in many cases").
KV_FRACTION = 0.95
GIB = 1024.0 ** 3


class BenchLimits(NamedTuple):
    """``max_batch_size`` (per micro-batch) and ``max_num_tokens`` (per step) of a trtllm-bench run."""

    max_batch_size: int
    max_num_tokens: int


def kv_cache_max_requests(model: str, gpu: str, tp: int, pp: int, weight_dtype: str, kv_dtype: str,
                          isl: int, osl: int) -> float:
    """calc_engine_setting: requests of ``isl + osl`` tokens the KV cache holds on ``tp × pp`` GPUs."""
    m, g = load_model(model), load_gpu(gpu)
    kv_heads = max(tp, m.num_kv_heads)
    per_token = 2 * m.num_layers * kv_heads * m.head_dim * BYTES_PER_ELEM.get(kv_dtype, 2.0) / GIB
    engine = param_count(m).total * BYTES_PER_ELEM.get(weight_dtype, 2.0) / GIB
    available = g.memory_bytes / GIB * tp * pp - engine
    return available * KV_FRACTION / (per_token * (isl + osl))


def _round_up(v: float, floor: int, ladder: tuple[tuple[float, int], ...]) -> int:
    """``v`` rounded up to the step of the first ladder rung it is below, and at least ``floor``."""
    step = next(s for limit, s in ladder if v < limit)
    return max(floor, step * math.ceil(v / step))


#: finetune_setting's rounding: (below this value, round up to a multiple of this).
BATCH_LADDER = ((256, 32), (1024, 128), (math.inf, 256))
TOKEN_LADDER = ((4096, 256), (8192, 512), (math.inf, 1024))


def finetune(requests: float, isl: int, osl: int, pp: int) -> BenchLimits:
    """finetune_setting (optimistic tuning, the path of every attention-only model)."""
    raw_bs = min(requests, 4096) / pp
    raw_token = min(raw_bs * (1 + isl / osl), 32768)
    return BenchLimits(_round_up(raw_bs, 64, BATCH_LADDER), _round_up(raw_token, 2048, TOKEN_LADDER))


def bench_limits(model: str, gpu: str, tp: int, pp: int, weight_dtype: str, kv_dtype: str,
                 isl: int, osl: int) -> BenchLimits:
    """The limits trtllm-bench computes for one table row."""
    return finetune(kv_cache_max_requests(model, gpu, tp, pp, weight_dtype, kv_dtype, isl, osl), isl, osl, pp)
