"""The continuous scheduler's decode-run prices: keyed exactly as BatchShape.decode_total keys them."""
from __future__ import annotations

from simulator.engine.simulate import simulate
from simulator.perf.shape import BatchShape
from simulator.perf.step import StepModel

from ..conftest import make_scenario


def test_decode_run_key_is_decode_totals(monkeypatch):
    seen: list[tuple] = []
    cost = StepModel.cost

    def spy(self, shape):
        if not isinstance(shape, BatchShape):      # the decode-run path passes a plain tuple
            seen.append(shape)
        return cost(self, shape)

    monkeypatch.setattr(StepModel, "cost", spy)
    simulate(make_scenario(**{"workload.requests": 60, "workload.output_tokens": {"dist": "fixed", "value": 64}}))
    assert seen
    for t in seen:
        ref = BatchShape.decode_total(t[4], t[5], t[8])
        assert t == tuple(ref) and [type(a) for a in t] == [type(a) for a in ref]
