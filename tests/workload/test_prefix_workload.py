"""Shared system prompts, multi-turn sessions and Mooncake hash ids as prompt segments."""
from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from simulator.workload import WorkloadConfig, generate
from simulator.workload.generate import generate_plan
from simulator.workload.prefix import SYSTEM, output_id

from .helpers import FIXTURES


def _cfg(**extra) -> WorkloadConfig:
    data = {"arrival": {"process": "poisson", "rate": 5}, "requests": 4000,
            "prompt_tokens": {"dist": "uniform", "low": 10, "high": 200},
            "output_tokens": {"dist": "uniform", "low": 1, "high": 50}}
    data.update(extra)
    return WorkloadConfig.model_validate(data)


def test_system_prompt_is_prepended_to_a_share_of_requests():
    plain = generate(_cfg(), 3)
    p = generate_plan(_cfg(prefix={"system_prompt_tokens": 700, "share": 0.3, "prompts": 5}), 3)
    seg = p.segments
    assert seg is not None and (seg.totals() == p.table.prompt_tokens).all()
    first = seg.ids[seg.offsets[:-1]]
    uses = (first >= SYSTEM) & (first < SYSTEM + 5)
    assert uses.mean() == pytest.approx(0.3, abs=0.03)
    assert set(np.unique(first[uses] - SYSTEM)) == set(range(5))
    # the user part keeps its own stream: lengths equal the plain workload's, plus 700 where used
    assert (p.table.prompt_tokens == plain.prompt_tokens + 700 * uses).all()
    assert (p.table.arrival_s == plain.arrival_s).all()


def test_sessions_repeat_the_previous_turn_and_its_answer():
    cfg = _cfg(requests=200, sessions={"turns": 4, "think_time_s": 3.0},
               prefix={"system_prompt_tokens": 64, "share": 1.0})
    p = generate_plan(cfg, 0)
    t, links, seg = p.table, p.sessions, p.segments
    assert links is not None and seg is not None
    assert np.isnan(t.arrival_s).all()
    first = links.prev < 0
    assert first.sum() == 50
    starts = links.start_s[first]
    assert (np.diff(starts) >= 0).all() and np.isnan(links.start_s[~first]).all()
    later = np.flatnonzero(~first)
    prev = links.prev[later]
    assert (prev == later - 1).all()
    user = t.prompt_tokens[later] - t.prompt_tokens[prev] - t.output_tokens[prev]
    assert (user >= 10).all() and (user <= 200).all()
    for i in later[:20]:
        ids, lens = seg.of(int(i))
        pids, plens = seg.of(int(i) - 1)
        assert list(ids[: len(pids)]) == list(pids) and ids[len(pids)] == output_id(int(i) - 1)
        assert lens[len(pids)] == t.output_tokens[i - 1]
    assert (links.think_s[later] == 3.0).all() and (links.think_s[first] == 0).all()


def test_geometric_turns_have_the_mean_asked_for():
    p = generate_plan(_cfg(requests=20000, sessions={"turns": 5, "turns_dist": "geometric"}), 1)
    sessions = int((p.sessions.prev < 0).sum())
    assert 20000 / sessions == pytest.approx(5, rel=0.05)


def test_mooncake_hash_ids_become_512_token_segments():
    p = generate_plan(WorkloadConfig.model_validate(
        {"arrival": {"process": "trace", "path": str(FIXTURES / "mooncake_small.jsonl")}}), 0)
    seg = p.segments
    assert seg is not None and (seg.totals() == p.table.prompt_tokens).all()
    ids, lens = seg.of(0)                     # 1000 tokens, hash ids [0, 1]
    assert list(lens) == [512, 488]
    ids3, _ = seg.of(3)                       # 2049 tokens, hash ids [0, 4, 5, 6, 7]
    assert ids3[0] == ids[0]


@pytest.mark.parametrize("extra", [
    {"arrival": {"process": "closed_loop", "concurrency": 2}, "sessions": {"turns": 2}},
    {"arrival": {"process": "trace", "path": "x.jsonl"}, "prefix": {"system_prompt_tokens": 10}},
    {"prefix": {"system_prompt_tokens": 0}},
    {"prefix": {"system_prompt_tokens": 10, "share": 1.5}},
])
def test_bad_combinations_are_refused(extra):
    with pytest.raises(ValidationError):
        _cfg(**extra)
