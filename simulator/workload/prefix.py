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


def _session_turns(cfg: Sessions, n: int, rng: np.random.Generator) -> np.ndarray:
    """Turns of each session, ``n`` in all (the last session is cut short to fit).

    Geometric counts are drawn in blocks, then exactly as many as used are drawn again from the
    saved state, so ``rng`` ends where one draw per session would leave it."""
    if cfg.turns_dist == "fixed":
        whole, rest = divmod(n, cfg.turns)
        return np.array([cfg.turns] * whole + ([rest] if rest else []), dtype=np.int64)
    p = 1.0 / cfg.turns
    saved = rng.bit_generator.state
    drawn: list[np.ndarray] = []
    total, used = 0, 0
    while total < n:
        block = rng.geometric(p, size=max(1024, 2 * (n - total) // cfg.turns + 16))
        ends = total + np.cumsum(block)
        cut = int(np.searchsorted(ends, n))          # first session whose end reaches n
        if cut < len(block):
            drawn.append(block[:cut + 1])
            used += cut + 1
            break
        drawn.append(block)
        used += len(block)
        total = int(ends[-1])
    rng.bit_generator.state = saved
    rng.geometric(p, size=used)
    turns = np.concatenate(drawn).astype(np.int64)
    turns[-1] -= int(turns.sum()) - n
    return turns


def _session_segments(turns: np.ndarray, sys_: np.ndarray, n_sys: int, user: np.ndarray,
                      output: np.ndarray) -> PromptSegments:
    """Segments of every turn: the session's system prompt (if any), then the user turns and answers
    before it, then its own user turn. Built as index arithmetic over the conversation
    ``USER+f, OUTPUT+f, USER+f+1, ...`` of each session starting at request ``f``."""
    n = len(user)
    first = np.repeat(np.cumsum(turns) - turns, turns)          # first request of each request's session
    has = np.repeat(sys_ >= 0, turns)
    count = has + 2 * (np.arange(n) - first) + 1
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(count, out=offsets[1:])
    req = np.repeat(np.arange(n), count)
    q = np.arange(offsets[-1]) - offsets[:-1][req] - has[req]   # place in the conversation; -1: system
    conv = 2 * first[req] + np.maximum(q, 0)
    m, is_out = conv // 2, (conv % 2).astype(bool)
    ids = np.where(is_out, OUTPUT + m, USER + m)
    lens = np.where(is_out, output[m], user[m]).astype(np.int64)
    is_sys = q < 0
    ids[is_sys] = SYSTEM + np.repeat(sys_, turns)[req[is_sys]]
    lens[is_sys] = n_sys
    return PromptSegments(offsets, ids.astype(np.int64), lens)


def sessions_plan(workload: WorkloadConfig, user: np.ndarray, output: np.ndarray,
                  starts_of: Callable[[int], np.ndarray], rngs: dict[str, np.random.Generator]) -> WorkloadPlan:
    """Multi-turn sessions over ``len(user)`` requests (turns of one session are consecutive ids).

    ``starts_of(k)`` gives ``k`` sorted session start times (seconds). Time and memory are linear in
    the segments (a turn repeats the conversation so far)."""
    cfg: Sessions = workload.sessions  # type: ignore[assignment]
    n = len(user)
    rng = rngs["sessions"]
    turns = _session_turns(cfg, n, rng)
    k = len(turns)
    starts = starts_of(k)
    sys_ = _system(workload.prefix, k, rngs["prefix"])
    n_sys = workload.prefix.system_prompt_tokens if workload.prefix is not None else 0
    if cfg.think_time_dist == "exponential":
        think = cfg.think_time_s * rng.standard_exponential(n)
    else:
        think = np.full(n, cfg.think_time_s)
    user, output = np.asarray(user, dtype=np.int64), np.asarray(output, dtype=np.int64)
    first_ids = np.cumsum(turns) - turns
    first = np.repeat(first_ids, turns)
    ids = np.arange(n, dtype=np.int64)
    prev = np.where(ids > first, ids - 1, -1)
    start_s = np.full(n, np.nan)
    start_s[first_ids] = starts
    spoken = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(user + output, out=spoken[1:])
    prompt = np.repeat(np.where(sys_ >= 0, n_sys, 0), turns) + spoken[ids] - spoken[first] + user
    think = np.where(prev >= 0, think, 0.0)
    table = RequestTable(arrival_s=np.full(n, np.nan), prompt_tokens=prompt, output_tokens=output,
                         notes=(f"{k} sessions of {n} turns in all",))
    return WorkloadPlan(table, _session_segments(turns, sys_, n_sys, user, output), SessionLinks(start_s, prev, think))


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
