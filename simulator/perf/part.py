"""A memoised piece of a step's time (the step model sums parts), the sums of op times it uses, and
the step's predicted time with its breakdown."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from .roofline import OpTime


@dataclass(frozen=True)
class Part:
    """A memoised piece of a step: seconds per kind, op details, kernels, and their totals."""

    breakdown: dict[str, float]
    ops: dict[str, OpTime]
    kernels: int
    seconds: float
    flops: float
    bytes: float

    @staticmethod
    def of(breakdown: dict[str, float], ops: dict[str, OpTime], kernels: int) -> "Part":
        return Part(breakdown, ops, kernels, sum(breakdown.values()),
                    sum(o.flops for o in ops.values()), sum(o.bytes for o in ops.values()))


# Memo keys of the step model's parts: one definition for building a part and for looking it up.
def tokens_key(m: float, m_all: float, graph: bool) -> tuple:
    """Key of the part that scales with the token count (``m`` on one GPU's dense path, ``m_all`` in all)."""
    return ("t", m, m_all, graph)


def seqs_key(rows: float, graph: bool) -> tuple:
    """Key of the per-sequence part (LM head, sampling) for ``rows`` rows with logits on one GPU."""
    return ("s", rows, graph)


class AttnSums(NamedTuple):
    """One phase's attention on one GPU: query tokens, sequences, causal query-key pairs and KV entries
    read, and the last two with each sequence's context capped at the sliding window."""

    q: float
    seqs: float
    pairs: float
    kv: float
    pairs_w: float
    kv_w: float


def attn_key(kind: str, a: AttnSums, graph: bool) -> tuple:
    """Key of an attention part (``kind``: attention_prefill or attention_decode)."""
    return (kind, *a, graph)


def merge_ops(a: OpTime, b: OpTime) -> OpTime:
    """Two op times of one kind added field by field (seconds, FLOPs, bytes)."""
    return OpTime(a.seconds + b.seconds, a.flops + b.flops, a.bytes + b.bytes, a.compute_s + b.compute_s,
                  a.memory_s + b.memory_s)


def add_op(acc: OpTime | None, t: OpTime, times: int, sec: float) -> OpTime:
    """``acc`` plus ``times`` repeats of op ``t`` that take ``sec`` seconds in all (FLOPs and bytes scale)."""
    f, by, c, mm = t.flops * times, t.bytes * times, t.compute_s * times, t.memory_s * times
    if acc is None:
        return OpTime(sec, f, by, c, mm)
    return OpTime(acc.seconds + sec, acc.flops + f, acc.bytes + by, acc.compute_s + c, acc.memory_s + mm)


class StepCost(NamedTuple):
    """The price of one step: wall seconds, FLOPs and bytes moved (what the engine logs per step)."""

    wall_s: float
    flops: float
    bytes: float


@dataclass
class StepTime:
    """Predicted step: GPU kernel time, wall time, and the breakdown by operation kind (seconds)."""

    gpu_s: float
    wall_s: float
    kernels: int
    flops: float
    bytes: float
    breakdown: dict[str, float] = field(default_factory=dict)
    bound: dict[str, str] = field(default_factory=dict)


def step_time(parts: list[Part], wall: Callable[[float, int], float]) -> StepTime:
    """The :class:`StepTime` of a step made of ``parts``: their breakdowns and ops summed by kind, wall
    time from ``wall(gpu seconds, kernels)``."""
    breakdown: dict[str, float] = {}
    ops: dict[str, OpTime] = {}
    for p in parts:
        for k, v in p.breakdown.items():
            breakdown[k] = breakdown.get(k, 0.0) + v
        for k, o in p.ops.items():
            ops[k] = add_op(ops.get(k), o, 1, o.seconds) if k not in ops else merge_ops(ops[k], o)
    kernels = sum(p.kernels for p in parts)
    gpu_s = sum(breakdown.values())
    st = StepTime(gpu_s=gpu_s, wall_s=wall(gpu_s, kernels), kernels=kernels,
                  flops=sum(p.flops for p in parts), bytes=sum(p.bytes for p in parts),
                  breakdown=breakdown, bound={k: o.bound for k, o in ops.items()})
    if "communication" in breakdown:
        st.bound["communication"] = "communication"
    return st
