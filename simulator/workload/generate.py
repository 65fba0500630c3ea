"""Turn a :class:`WorkloadConfig` and a seed into a :class:`RequestTable`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.errors import InputError
from simulator.workload.arrivals import sample_arrivals
from simulator.workload.config import ClosedLoopArrival, OfflineArrival, TraceArrival, WorkloadConfig
from simulator.workload.lengths import sample_lengths
from simulator.workload.prefix import WorkloadPlan, sessions_plan, trace_segments, with_prefix
from simulator.workload.table import RequestTable
from simulator.workload.traces import read_trace

_STREAMS = ("arrivals", "prompt_tokens", "output_tokens", "think_time", "prefix", "sessions")


def rng_streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for arrivals, prompt lengths, output lengths, think times, shared
    prefixes and sessions.

    Each draws from its own child of ``SeedSequence(seed)``, so changing one distribution leaves
    the others' samples unchanged.
    """
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(_STREAMS, children)}


def _resolve(path: Path, base_dir: Path | None) -> Path:
    return path if path.is_absolute() or base_dir is None else base_dir / path


def _from_trace(workload: WorkloadConfig, rngs: dict[str, np.random.Generator], base_dir: Path | None) -> RequestTable:
    cfg = workload.arrival
    assert isinstance(cfg, TraceArrival)
    path = _resolve(cfg.path, base_dir)
    table = read_trace(path, cfg.format, field="workload.arrival.path")
    if len(table) == 0:
        raise InputError("workload.arrival.path", str(path), "the trace has no requests")
    notes = list(table.notes)
    if workload.requests is not None:
        if workload.requests < len(table):
            table = table.head(workload.requests)
        elif workload.requests > len(table):
            notes.append(f"trace has {len(table)} requests, fewer than requests: {workload.requests}; using all")
    n = len(table)
    prompt, output = table.prompt_tokens, table.output_tokens
    offsets, ids = table.block_offsets, table.block_ids
    if workload.prompt_tokens is not None:
        prompt = sample_lengths(
            workload.prompt_tokens, n, rngs["prompt_tokens"], field="workload.prompt_tokens", base_dir=base_dir
        )
        if offsets is not None:
            notes.append("prompt_tokens replaces the trace's prompt lengths; its prefix blocks are dropped")
            offsets = ids = None
    if workload.output_tokens is not None:
        output = sample_lengths(
            workload.output_tokens, n, rngs["output_tokens"], field="workload.output_tokens", base_dir=base_dir
        )
    return RequestTable(
        arrival_s=table.arrival_s / cfg.speedup,
        prompt_tokens=prompt,
        output_tokens=output,
        block_offsets=offsets,
        block_ids=ids,
        prefix_block_tokens=table.prefix_block_tokens,
        notes=tuple(notes),
    )


def generate(workload: WorkloadConfig, seed: int, *, base_dir: Path | None = None) -> RequestTable:
    """The requests of ``workload``: the same ``seed`` gives the same table.

    Relative file paths (traces, empirical lengths) are taken from ``base_dir`` (default: the
    working directory). With ``sessions`` every arrival is NaN (the engine issues turns); see
    :func:`generate_plan` for the session links and prompt contents.
    """
    return generate_plan(workload, seed, base_dir=base_dir).table


def generate_plan(workload: WorkloadConfig, seed: int, *, base_dir: Path | None = None) -> WorkloadPlan:
    """The request table plus prompt contents (shared prefixes, sessions, trace hash ids) and
    session links, for the engine's prefix cache and turn-by-turn arrivals."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError("seed", seed, "must be an integer >= 0")
    rngs = rng_streams(int(seed))
    cfg = workload.arrival
    if isinstance(cfg, TraceArrival):
        table = _from_trace(workload, rngs, base_dir)
        return WorkloadPlan(table, trace_segments(table, table.prefix_block_tokens))
    n = workload.requests
    assert n is not None and workload.prompt_tokens is not None and workload.output_tokens is not None
    prompt = sample_lengths(workload.prompt_tokens, n, rngs["prompt_tokens"], field="workload.prompt_tokens", base_dir=base_dir)
    output = sample_lengths(workload.output_tokens, n, rngs["output_tokens"], field="workload.output_tokens", base_dir=base_dir)
    if workload.sessions is not None:
        def starts(k: int) -> np.ndarray:
            return np.zeros(k) if isinstance(cfg, OfflineArrival) else sample_arrivals(cfg, k, rngs["arrivals"])
        return sessions_plan(workload, prompt, output, starts, rngs)
    concurrency = think = None
    if isinstance(cfg, OfflineArrival):
        arrival = np.zeros(n)
    elif isinstance(cfg, ClosedLoopArrival):
        arrival = np.full(n, np.nan)
        concurrency = cfg.concurrency
        if cfg.think_time_dist == "exponential":
            think = cfg.think_time_s * rngs["think_time"].standard_exponential(n)
        else:
            think = np.full(n, cfg.think_time_s)
    else:
        arrival = sample_arrivals(cfg, n, rngs["arrivals"])
    segments = None
    if workload.prefix is not None:
        prompt, segments = with_prefix(workload.prefix, prompt, rngs["prefix"])
    table = RequestTable(
        arrival_s=arrival, prompt_tokens=prompt, output_tokens=output, concurrency=concurrency, think_s=think
    )
    return WorkloadPlan(table, segments)
