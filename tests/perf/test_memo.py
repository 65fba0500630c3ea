"""The step model's one memo: prices come out the same whether it holds them, was cleared, or filled up."""
from __future__ import annotations

from simulator.perf import memo
from simulator.perf.step import BatchShape, StepModel


def test_a_cleared_or_full_memo_changes_no_price(llama8b, flat_gpu, fused, monkeypatch):
    shapes = [BatchShape.decode(n, 500 + 37 * n) for n in range(1, 40)] + \
             [BatchShape.mixed([(p, 256)], BatchShape.decode_total(8, 8 * 900.0)) for p in range(0, 4000, 400)]
    cold = StepModel(llama8b, flat_gpu, fused)
    first = [cold.price(b) for b in shapes]
    assert [cold.price(b) for b in shapes] == first            # memo hits
    assert len(cold.memo) > len(shapes) // 2                   # parts and decode-only prices stored
    detail = cold.price(shapes[0], detail=True)
    assert cold.price(shapes[0], detail=True) is detail        # the detailed time is memoised too
    assert detail.wall_s == first[0].wall_s
    monkeypatch.setattr(memo, "LIMIT", 5)                      # cleared again and again while pricing
    small = StepModel(llama8b, flat_gpu, fused)
    assert [small.price(b) for b in shapes] == first
    assert len(small.memo) <= memo.LIMIT + 1
