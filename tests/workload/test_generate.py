"""generate(): determinism, independent streams, every process, traces, and the default chat workload."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.errors import InputError
from simulator.workload import RequestTable, WorkloadConfig, default_chat_workload, generate
from simulator.workload.table import take_ragged

from .helpers import FIXTURES, SHARED_TRACES, needs_shared_traces


def _cfg(arrival: dict, requests: int | None = 1000, **lengths: dict) -> WorkloadConfig:
    data: dict = {"arrival": arrival}
    if requests is not None:
        data["requests"] = requests
    data.update(lengths)
    if arrival["process"] != "trace":
        data.setdefault("prompt_tokens", {"dist": "lognormal", "median": 500, "sigma": 1})
        data.setdefault("output_tokens", {"dist": "uniform", "low": 1, "high": 300})
    return WorkloadConfig.model_validate(data)


ARRIVALS = [
    {"process": "poisson", "rate": 10},
    {"process": "gamma", "rate": 10, "cv": 3},
    {"process": "constant", "rate": 10},
    {"process": "poisson", "diurnal": {"mean_rate": 5, "amplitude": 0.9, "period_s": 600}},
    {"process": "offline"},
    {"process": "closed_loop", "concurrency": 4, "think_time_s": 2, "think_time_dist": "exponential"},
]


@pytest.mark.parametrize("arrival", ARRIVALS, ids=lambda a: a["process"])
def test_same_seed_same_table(arrival: dict) -> None:
    cfg = _cfg(arrival)
    a, b, c = generate(cfg, 42), generate(cfg, 42), generate(cfg, 43)
    for name in ("arrival_s", "prompt_tokens", "output_tokens"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.prompt_tokens, c.prompt_tokens)
    assert len(a) == 1000
    assert a.prompt_tokens.dtype == np.int64 and a.prompt_tokens.min() >= 1 and a.output_tokens.min() >= 1


def test_changing_lengths_does_not_move_arrivals() -> None:
    a = generate(_cfg({"process": "poisson", "rate": 10}), 7)
    b = generate(_cfg({"process": "poisson", "rate": 10}, prompt_tokens={"dist": "normal", "mean": 900, "std": 5}), 7)
    np.testing.assert_array_equal(a.arrival_s, b.arrival_s)
    np.testing.assert_array_equal(a.output_tokens, b.output_tokens)
    assert not np.array_equal(a.prompt_tokens, b.prompt_tokens)


def test_offline_and_closed_loop() -> None:
    off = generate(_cfg({"process": "offline"}), 1)
    assert np.all(off.arrival_s == 0) and not off.is_closed_loop
    fixed = generate(_cfg({"process": "closed_loop", "concurrency": 8, "think_time_s": 1.5}), 1)
    assert fixed.is_closed_loop and fixed.concurrency == 8
    assert np.all(np.isnan(fixed.arrival_s)) and math.isnan(fixed.span_s)
    assert np.all(fixed.think_s == 1.5)  # type: ignore[operator]
    n = 20_000
    expo = generate(_cfg({"process": "closed_loop", "concurrency": 2, "think_time_s": 3, "think_time_dist": "exponential"}, n), 1)
    assert abs(expo.think_s.mean() - 3) < 4 * 3 / math.sqrt(n)  # type: ignore[union-attr]


def test_bad_seed() -> None:
    with pytest.raises(InputError, match="seed: got -1; must be an integer >= 0"):
        generate(_cfg({"process": "offline"}), -1)
    with pytest.raises(InputError, match="seed: got 1.5"):
        generate(_cfg({"process": "offline"}), 1.5)  # type: ignore[arg-type]


def test_trace_requests_cap_and_speedup() -> None:
    cfg = _cfg({"process": "trace", "path": str(FIXTURES / "azure_small.csv"), "speedup": 4}, requests=3)
    t = generate(cfg, 0)
    np.testing.assert_allclose(t.arrival_s, np.array([0.0, 0.052, 0.52004]) / 4, atol=1e-12)
    assert t.prompt_tokens.tolist() == [4808, 3180, 100] and t.notes == ()


def test_trace_shorter_than_requests_keeps_note_and_blocks() -> None:
    cfg = _cfg({"process": "trace", "path": "mooncake_small.jsonl"}, requests=50)
    t = generate(cfg, 0, base_dir=FIXTURES)
    assert len(t) == 5 and t.notes == ("trace has 5 requests, fewer than requests: 50; using all",)
    assert t.block_offsets is not None and t.block_offsets[-1] == 12


def test_trace_capped_ragged_blocks() -> None:
    t = generate(_cfg({"process": "trace", "path": str(FIXTURES / "mooncake_small.jsonl")}, requests=2), 0)
    assert t.block_offsets.tolist() == [0, 2, 5]  # type: ignore[union-attr]
    assert t.block_ids.tolist() == [0, 1, 0, 1, 2]  # type: ignore[union-attr]


def test_trace_with_length_override_drops_blocks() -> None:
    cfg = _cfg(
        {"process": "trace", "path": str(FIXTURES / "mooncake_small.jsonl")},
        requests=None,
        prompt_tokens={"dist": "fixed", "value": 64},
    )
    t = generate(cfg, 0)
    assert np.all(t.prompt_tokens == 64) and t.output_tokens.tolist() == [10, 20, 5, 1, 64]
    assert t.prefix_hashes is None and "prefix blocks are dropped" in t.notes[0]


def test_empty_trace(tmp_path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n")
    with pytest.raises(InputError, match="workload.arrival.path: got '.*e.csv'; the trace has no requests"):
        generate(_cfg({"process": "trace", "path": str(path)}, requests=None), 0)


def test_request_table_summaries() -> None:
    t = RequestTable(arrival_s=[0.0, 1.0, 4.0], prompt_tokens=[10, 20, 30], output_tokens=[1, 2, 3])
    assert len(t) == 3 and t.total_prompt_tokens == 60 and t.total_output_tokens == 6 and t.total_tokens == 66
    assert t.span_s == 4.0 and t.offered_rate == 0.5 and t.blocks_of(0).size == 0
    assert list(t.to_frame().columns) == ["arrival_s", "prompt_tokens", "output_tokens"]
    with pytest.raises(ValueError, match="sorted"):
        RequestTable(arrival_s=[1.0, 0.0], prompt_tokens=[1, 1], output_tokens=[1, 1])
    with pytest.raises(ValueError, match=">= 1"):
        RequestTable(arrival_s=[0.0], prompt_tokens=[0], output_tokens=[1])
    with pytest.raises(ValueError, match="block_offsets"):
        RequestTable(arrival_s=[0.0], prompt_tokens=[1], output_tokens=[1], block_offsets=[0, 2], block_ids=[5])


@settings(max_examples=100, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 6), min_size=1, max_size=30),
    data=st.data(),
)
def test_take_ragged_matches_python_lists(lengths: list[int], data: st.DataObject) -> None:
    rows_py = []
    next_id = 0
    for n in lengths:
        rows_py.append(list(range(next_id, next_id + n)))
        next_id += n
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = np.arange(next_id, dtype=np.int64)
    pick = data.draw(st.lists(st.integers(0, len(lengths) - 1), max_size=40))
    new_off, new_vals = take_ragged(offsets, values, np.array(pick, dtype=np.int64))
    got = [new_vals[new_off[i] : new_off[i + 1]].tolist() for i in range(len(pick))]
    assert got == [rows_py[i] for i in pick]


def test_default_chat_workload_matches_azure_conversation_statistics() -> None:
    cfg = default_chat_workload(requests=20_000)
    t = generate(cfg, 2024)
    assert cfg.arrival.process == "poisson" and cfg.arrival.rate == 5.53  # type: ignore[union-attr]
    assert t.prompt_tokens.max() <= 8192 and t.output_tokens.max() <= 4096
    n = len(t)
    # Published (Patel et al., ISCA 2024): input mean 1155 / p50 1020; output mean 211 / p50 129.
    for x, mean, median in ((t.prompt_tokens, 1155, 1020), (t.output_tokens, 211, 129)):
        sigma = math.sqrt(2 * math.log(mean / median))
        assert abs(math.log(np.median(x) / median)) < 4 * sigma * math.sqrt(math.pi / 2 / n) + 0.5 / median
        sd = mean * math.sqrt(math.exp(sigma**2) - 1)
        assert abs(x.mean() - mean) < 4 * sd / math.sqrt(n) + 0.01 * mean  # clipping trims < 1% of the mean
    assert t.offered_rate == pytest.approx(5.53, rel=4 / math.sqrt(n))


def test_default_chat_workload_arguments() -> None:
    assert default_chat_workload(rate=2.0, requests=10).requests == 10
    with pytest.raises(InputError, match="rate: got 0"):
        default_chat_workload(rate=0)
    with pytest.raises(InputError, match="requests: got 0"):
        default_chat_workload(requests=0)


@needs_shared_traces
def test_real_trace_through_generate() -> None:
    cfg = _cfg({"process": "trace", "path": str(SHARED_TRACES / "AzureLLMInferenceTrace_code.csv"), "speedup": 2}, requests=1000)
    t = generate(cfg, 0)
    assert len(t) == 1000 and t.prefix_hashes is None
    full = generate(_cfg({"process": "trace", "path": str(SHARED_TRACES / "AzureLLMInferenceTrace_code.csv")}, requests=None), 0)
    np.testing.assert_allclose(t.arrival_s, full.arrival_s[:1000] / 2)
    assert len(full) == 8_819
