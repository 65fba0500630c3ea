"""Rejected requests say why, counted per reason; a run that completes nothing is not stable."""
from __future__ import annotations

from simulator.config.loader import DEFAULT_SCENARIO, scenario_from_dict
from simulator.engine.simulate import simulate
from simulator.engine.state import REJECT_REASONS
from simulator.metrics.report import format_summary
from simulator.metrics.summary import summarize


def _summary(**overrides):
    s = scenario_from_dict(DEFAULT_SCENARIO, {"workload.requests": 20, **overrides})
    return summarize(simulate(s))


def test_prompts_beyond_the_context_length_are_rejected_with_the_reason():
    # llama-3.1-8b: max_position_embeddings 131,072; the KV cache of one H100 holds fewer tokens, so the
    # context rule must win for the reason to be the context length.
    out = _summary(**{"workload.prompt_tokens": {"dist": "fixed", "value": 200_000}})
    assert out["completed"] == 0 and out["rejected"] == 20
    assert out["rejected_by_reason"] == {REJECT_REASONS[3]: 20}
    assert out["stability"]["stable"] is False
    text = format_summary(out, width=200)
    assert "NO: no request completed" in text and "context length" in text


def test_prompts_beyond_kv_capacity_are_rejected_with_the_reason():
    out = _summary(**{"workload.prompt_tokens": {"dist": "fixed", "value": 100_000},
                      "deployment.kv_cache.num_blocks": 100})
    assert out["rejected_by_reason"] == {REJECT_REASONS[1]: 20}
    assert out["stability"]["stable"] is False


def test_a_mixed_run_counts_each_reason_and_stays_judged_by_its_queue():
    out = _summary(**{"workload.prompt_tokens": {"dist": "uniform", "low": 100, "high": 150_000},
                      "workload.arrival.rate": 0.5})
    by = out["rejected_by_reason"]
    assert sum(by.values()) == out["rejected"] and out["completed"] + out["rejected"] == 20
    assert out["completed"] > 0 and out["stability"]["stable"] is True


def test_block_size_too_large_blames_block_size(capsys):
    from simulator.cli import main
    assert main(["run", "--set", "deployment.kv_cache.block_size=1000000000", "--set", "workload.requests=5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("servesim: error: deployment.kv_cache.block_size: got 1000000000;")
