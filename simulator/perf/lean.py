"""The price of a step whose parts are all memoised, without building them: the part keys of
:meth:`StepModel._parts_of <simulator.perf.step.StepModel._parts_of>` made from the step's memo key
and looked up directly, and their seconds, FLOPs, bytes and kernels summed. Applies to steps with
no context or data parallelism, packed attention or sliding windows (``StepModel.lean``).

:func:`memoised_sums` is the reference; ``simulator/native/step_price.c`` is its compiled twin
(same keys, same sums in the same order: bit-identical), used where built unless
``SERVESIM_NATIVE=0``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from ..native import enabled, load
from .part import attn_key, seqs_key, tokens_key
from .shape import decode_pairs

if TYPE_CHECKING:
    from .part import Part

#: (GPU seconds, FLOPs, bytes, kernels, whether the step runs as a CUDA graph)
Sums = tuple[float, float, float, int, bool]


def part_sums(parts: Iterable["Part"]) -> tuple[float, float, float, int]:
    """Seconds, FLOPs, bytes and kernels of ``parts``, summed in order from 0."""
    gpu_s = flops = nbytes = 0.0
    kernels = 0
    for p in parts:
        gpu_s += p.seconds
        flops += p.flops
        nbytes += p.bytes
        kernels += p.kernels
    return gpu_s, flops, nbytes, kernels


def memoised_parts(memo: dict, cuda_graphs: bool, key: tuple) -> tuple[list["Part"], bool] | None:
    """The parts of the step with memo key ``key`` (a lean step model's :meth:`_parts_of`) and whether
    it runs as a graph, if the step has no sliding-window sums and every part is in ``memo``; else None."""
    pt, ps, pairs, kv, n, ctx, pw, kw, cw, q = key
    tokens = pt + n * q
    if pw is not None or kw is not None or cw is not None or tokens <= 0:
        return None
    get, graph = memo.get, cuda_graphs and ps == 0
    parts = [get(tokens_key(tokens, tokens, graph)), get(seqs_key(float(ps + n * q), graph))]
    if ps:
        pp, pk = float(pairs), float(kv)
        parts.append(get(attn_key("attention_prefill", (float(pt), float(ps), pp, pk, pp, pk), False)))
    if n:
        dp, c = float(decode_pairs(n, ctx, q)), float(ctx)
        parts.append(get(attn_key("attention_decode", (float(n * q), float(n), dp, c, dp, c), graph)))
    for p in parts:   # (not ``None in parts``: that compares each part with None field by field)
        if p is None:
            return None
    return parts, graph  # type: ignore[return-value]


def memoised_sums(memo: dict, cuda_graphs: bool, key: tuple) -> Sums | None:
    """:func:`part_sums` of :func:`memoised_parts` with the graph flag, or None where that is None."""
    hit = memoised_parts(memo, cuda_graphs, key)
    if hit is None:
        return None
    parts, graph = hit
    return (*part_sums(parts), graph)


_native = load("_step_price")


def memoised_sums_function(memo: dict, cuda_graphs: bool) -> Callable[[tuple], Any]:
    """:func:`memoised_sums` bound to ``memo`` and ``cuda_graphs``, compiled if built and not switched
    off by ``SERVESIM_NATIVE=0``."""
    f = _native.memoised_sums if _native is not None and enabled() else memoised_sums
    return partial(f, memo, bool(cuda_graphs))
