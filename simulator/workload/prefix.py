"""What prompts are made of, for prefix caching: shared system prompts, multi-turn sessions, and
Mooncake ``hash_ids``.

A prompt is a sequence of *segments*, each a content id and a length in tokens: equal ids hold
equal tokens, so two prompts share their first L tokens exactly when their segments agree up to
token L. The engine turns segments into the keys of its KV blocks (``simulator.engine.prefix_cache``).
A request's answer is the segment ``output_id(i)``; the next turn of a session repeats it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collections.abc import Callable

from simulator.workload.config import SharedPrefix, Sessions, WorkloadConfig
from simulator.workload.table import RequestTable

_TAG = 1 << 56
SYSTEM, USER, OUTPUT, TRACE = 1 * _TAG, 2 * _TAG, 3 * _TAG, 4 * _TAG


def output_id(i: int | np.ndarray) -> int | np.ndarray:
    """Content id of request ``i``'s answer."""
    return OUTPUT + i


@dataclass(frozen=True)
class PromptSegments:
    """Ragged segments: request ``i`` is ``ids[offsets[i]:offsets[i+1]]`` with ``lengths`` (tokens)."""

    offsets: np.ndarray
    ids: np.ndarray
    lengths: np.ndarray

    def of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.ids[a:b], self.lengths[a:b]

    def totals(self) -> np.ndarray:
        """Prompt length of every request, tokens."""
        return np.add.reduceat(self.lengths, self.offsets[:-1]) if len(self.lengths) else np.zeros(0, np.int64)


@dataclass(frozen=True)
class SessionLinks:
    """Turn structure: ``prev[i]`` is the previous turn of request ``i`` (-1 for a first turn), which
    arrives at ``start_s[i]``; a later turn arrives ``think_s[i]`` seconds after ``prev[i]`` ends."""

    start_s: np.ndarray
    prev: np.ndarray
    think_s: np.ndarray


@dataclass(frozen=True)
class WorkloadPlan:
    """A generated workload: the request table plus, when known, prompt contents and sessions."""

    table: RequestTable
    segments: PromptSegments | None = None
    sessions: SessionLinks | None = None


def _ragged(parts: list[list[tuple[int, int]]]) -> PromptSegments:
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    flat = [x for p in parts for x in p]
    ids = np.fromiter((x[0] for x in flat), dtype=np.int64, count=len(flat))
    lens = np.fromiter((x[1] for x in flat), dtype=np.int64, count=len(flat))
    return PromptSegments(offsets, ids, lens)


def _system(cfg: SharedPrefix | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """Which system prompt each of ``n`` requests (or sessions) uses; -1 for none."""
    if cfg is None:
        return np.full(n, -1, dtype=np.int64)
    uses = rng.random(n) < cfg.share
    which = rng.integers(0, cfg.prompts, size=n)
    return np.where(uses, which, -1)


def with_prefix(cfg: SharedPrefix, user: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, PromptSegments]:
    """Prompts (tokens) and segments when a share of requests starts with a system prompt."""
    sys_ = _system(cfg, len(user), rng)
    n_tok = cfg.system_prompt_tokens
    parts = [([(SYSTEM + int(s), n_tok)] if s >= 0 else []) + [(USER + i, int(u))]
             for i, (s, u) in enumerate(zip(sys_, user))]
    return user + np.where(sys_ >= 0, n_tok, 0), _ragged(parts)


def sessions_plan(workload: WorkloadConfig, user: np.ndarray, output: np.ndarray,
                  starts_of: Callable[[int], np.ndarray], rngs: dict[str, np.random.Generator]) -> WorkloadPlan:
    """Multi-turn sessions over ``len(user)`` requests (turns of one session are consecutive ids).

    ``starts_of(k)`` gives ``k`` sorted session start times (seconds)."""
    cfg: Sessions = workload.sessions  # type: ignore[assignment]
    n = len(user)
    rng = rngs["sessions"]
    turns: list[int] = []
    while sum(turns) < n:
        t = cfg.turns if cfg.turns_dist == "fixed" else int(rng.geometric(1.0 / cfg.turns))
        turns.append(min(t, n - sum(turns)))
    k = len(turns)
    starts = starts_of(k)
    sys_ = _system(workload.prefix, k, rngs["prefix"])
    n_sys = workload.prefix.system_prompt_tokens if workload.prefix is not None else 0
    if cfg.think_time_dist == "exponential":
        think = cfg.think_time_s * rng.standard_exponential(n)
    else:
        think = np.full(n, cfg.think_time_s)
    prev = np.full(n, -1, dtype=np.int64)
    start_s = np.full(n, np.nan)
    prompt = np.zeros(n, dtype=np.int64)
    parts: list[list[tuple[int, int]]] = []
    i = 0
    for s, t in enumerate(turns):
        segs: list[tuple[int, int]] = [(SYSTEM + int(sys_[s]), n_sys)] if sys_[s] >= 0 else []
        start_s[i] = starts[s]
        for turn in range(t):
            if turn:
                prev[i] = i - 1
                segs = segs + [(int(output_id(i - 1)), int(output[i - 1]))]
            segs = segs + [(USER + i, int(user[i]))]
            parts.append(segs)
            prompt[i] = sum(x[1] for x in segs)
            i += 1
    think = np.where(prev >= 0, think, 0.0)
    table = RequestTable(arrival_s=np.full(n, np.nan), prompt_tokens=prompt, output_tokens=output,
                         notes=(f"{k} sessions of {n} turns in all",))
    return WorkloadPlan(table, _ragged(parts), SessionLinks(start_s, prev, think))


def trace_segments(table: RequestTable, block_tokens: int) -> PromptSegments | None:
    """Segments from Mooncake ``hash_ids`` (one id per ``block_tokens`` tokens of the prompt)."""
    if table.block_offsets is None or table.block_ids is None:
        return None
    parts: list[list[tuple[int, int]]] = []
    off, ids = table.block_offsets, table.block_ids
    for i, p in enumerate(table.prompt_tokens):
        p = int(p)
        row = ids[off[i]:off[i + 1]][: -(-p // block_tokens)]
        segs = [(TRACE + (int(h) % _TAG), min(block_tokens, p - j * block_tokens)) for j, h in enumerate(row)]
        covered = sum(x[1] for x in segs)
        if covered < p:
            segs.append((USER + i, p - covered))
        parts.append(segs)
    return _ragged(parts)
