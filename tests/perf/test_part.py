"""Parts of a step: totals of a part and sums of op times, against hand-added figures."""
from __future__ import annotations

from simulator.perf.part import Part, add_op, merge_ops
from simulator.perf.roofline import OpTime


def test_part_totals_are_sums_over_kinds_and_ops() -> None:
    ops = {"mlp": OpTime(2e-3, 1e12, 5e9, 1.5e-3, 2e-3), "sampling": OpTime(1e-4, 0.0, 3e8, 0.0, 1e-4)}
    p = Part.of({"mlp": 2e-3, "sampling": 1e-4, "communication": 5e-4}, ops, 7)
    assert p.seconds == 2e-3 + 1e-4 + 5e-4
    assert p.flops == 1e12 and p.bytes == 5e9 + 3e8 and p.kernels == 7


def test_add_op_scales_flops_and_bytes_by_repeats_and_takes_the_given_seconds() -> None:
    t = OpTime(1e-3, 10.0, 20.0, 0.4e-3, 0.8e-3)
    one = add_op(None, t, 32, 0.05)
    assert (one.seconds, one.flops, one.bytes, one.compute_s, one.memory_s) == (0.05, 320.0, 640.0, 32 * 0.4e-3,
                                                                                 32 * 0.8e-3)
    two = add_op(one, t, 1, 2e-3)
    assert (two.seconds, two.flops, two.bytes) == (0.05 + 2e-3, 330.0, 660.0)


def test_merge_ops_adds_every_field() -> None:
    a, b = OpTime(1.0, 2.0, 3.0, 4.0, 5.0), OpTime(10.0, 20.0, 30.0, 40.0, 50.0)
    m = merge_ops(a, b)
    assert (m.seconds, m.flops, m.bytes, m.compute_s, m.memory_s) == (11.0, 22.0, 33.0, 44.0, 55.0)
