"""Multi-turn sessions: the vectorised ``sessions_plan`` against a turn-by-turn reference.

The reference below is the plain definition (one draw per session until the turns reach the
requests; each turn's segments are the previous turn's plus its answer and the new user turn). The
module's version builds the same arrays by index arithmetic in time linear in the segments; the
two must agree bit for bit, random streams included (the think times are drawn after the turns).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.workload import WorkloadConfig
from simulator.workload.generate import generate_plan, rng_streams
from simulator.workload.prefix import (SYSTEM, USER, PromptSegments, SessionLinks, _system, output_id,
                                       sessions_plan)


def _reference(cfg: WorkloadConfig, user: np.ndarray, output: np.ndarray,
               starts_of: Callable[[int], np.ndarray], rngs: dict[str, np.random.Generator]):
    s = cfg.sessions
    n, rng = len(user), rngs["sessions"]
    turns: list[int] = []
    total = 0
    while total < n:
        t = s.turns if s.turns_dist == "fixed" else int(rng.geometric(1.0 / s.turns))
        turns.append(min(t, n - total))
        total += turns[-1]
    starts = starts_of(len(turns))
    sys_ = _system(cfg.prefix, len(turns), rngs["prefix"])
    n_sys = cfg.prefix.system_prompt_tokens if cfg.prefix is not None else 0
    think = (s.think_time_s * rng.standard_exponential(n) if s.think_time_dist == "exponential"
             else np.full(n, s.think_time_s))
    prev, start_s, prompt = np.full(n, -1), np.full(n, np.nan), np.zeros(n, dtype=np.int64)
    ids: list[int] = []
    lens: list[int] = []
    offsets = [0]
    i = 0
    for k, t in enumerate(turns):
        segs = [(SYSTEM + int(sys_[k]), n_sys)] if sys_[k] >= 0 else []
        start_s[i] = starts[k]
        for turn in range(t):
            if turn:
                prev[i] = i - 1
                segs.append((int(output_id(i - 1)), int(output[i - 1])))
            segs.append((USER + i, int(user[i])))
            ids += [x[0] for x in segs]
            lens += [x[1] for x in segs]
            offsets.append(len(ids))
            prompt[i] = sum(x[1] for x in segs)
            i += 1
    return prompt, PromptSegments(np.array(offsets), np.array(ids), np.array(lens)), \
        SessionLinks(start_s, prev, np.where(prev >= 0, think, 0.0))


def _workload(n: int, turns: int, dist: str, think: str, share: float | None) -> WorkloadConfig:
    data = {"arrival": {"process": "poisson", "rate": 5}, "requests": n,
            "prompt_tokens": {"dist": "uniform", "low": 10, "high": 200},
            "output_tokens": {"dist": "uniform", "low": 1, "high": 50},
            "sessions": {"turns": turns, "turns_dist": dist, "think_time_s": 2.0, "think_time_dist": think}}
    if share is not None:
        data["prefix"] = {"system_prompt_tokens": 64, "share": share, "prompts": 3}
    return WorkloadConfig.model_validate(data)


def _both(cfg: WorkloadConfig, seed: int):
    out = []
    for build in (sessions_plan, _reference):
        rngs = rng_streams(seed)
        user = rngs["prompt_tokens"].integers(10, 200, cfg.requests)
        output = rngs["output_tokens"].integers(1, 50, cfg.requests)
        out.append((build(cfg, user, output, lambda k: np.sort(rngs["arrivals"].random(k)), rngs),
                    rngs["sessions"].random(), rngs["prefix"].random()))
    return out


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), turns=st.integers(1, 50), dist=st.sampled_from(["fixed", "geometric"]),
       think=st.sampled_from(["fixed", "exponential"]), share=st.sampled_from([None, 0.0, 0.5, 1.0]),
       seed=st.integers(0, 2**32))
def test_sessions_plan_equals_the_turn_by_turn_reference(n, turns, dist, think, share, seed):
    (plan, rng_after, prefix_after), (ref, ref_rng_after, ref_prefix_after) = _both(
        _workload(n, turns, dist, think, share), seed)
    prompt, seg, links = ref
    assert plan.table.prompt_tokens.tolist() == prompt.tolist()
    for name in ("offsets", "ids", "lengths"):
        assert getattr(plan.segments, name).tolist() == getattr(seg, name).tolist(), name
    assert (plan.segments.totals() == plan.table.prompt_tokens).all()
    assert plan.sessions.prev.tolist() == links.prev.tolist()
    np.testing.assert_array_equal(plan.sessions.start_s, links.start_s)
    np.testing.assert_array_equal(plan.sessions.think_s, links.think_s)
    # the random streams end where the reference leaves them
    assert (rng_after, prefix_after) == (ref_rng_after, ref_prefix_after)


def test_one_turn_sessions_are_one_segment_each_and_linear():
    """``turns: 1``: every request is its own session, so one user segment each (no answers repeated)."""
    p = generate_plan(_workload(100_000, 1, "fixed", "fixed", None), 0)
    assert len(p.segments.ids) == 100_000 and (p.sessions.prev == -1).all()
    assert (p.segments.ids == USER + np.arange(100_000)).all()
    assert (p.segments.lengths == p.table.prompt_tokens).all()


@pytest.mark.parametrize("n,turns", [(10, 3), (9, 3), (1, 5)])
def test_fixed_turns_cut_the_last_session_short(n, turns):
    p = generate_plan(_workload(n, turns, "fixed", "fixed", None), 0)
    firsts = np.flatnonzero(p.sessions.prev < 0)
    assert np.diff(np.append(firsts, n)).tolist() == [turns] * (n // turns) + ([n % turns] if n % turns else [])
