"""Drive transformers' continuous-batching manager and log what it does, step by step.

The manager (``model.init_continuous_batching``) runs its own scheduler loop in a background
thread: FIFO, decodes first, then prompt chunks under a token budget, paged KV cache. This module
builds it with explicit settings, replays one workload point through ``add_request`` /
``get_result`` and records, per request, arrival, admission, every token's time and completion,
and, per step, the scheduled batch (sequences, new tokens, contexts) with host timings. torch and
transformers are imported lazily; times are ``time.perf_counter`` seconds.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .workload import Point, prompt_ids

ATTENTION = "paged|sdpa"     # paged KV cache read through torch SDPA with a packed-batch mask


@dataclass(frozen=True)
class EngineSettings:
    """The manager's limits: tokens per KV block, KV blocks, tokens per step, sequences per step."""

    block_size: int = 64
    num_blocks: int = 2048
    max_batch_tokens: int = 2048
    max_batch_size: int = 32

    def row(self) -> dict[str, object]:
        return {**asdict(self), "attn_implementation": ATTENTION}


def build_manager(model: Any, settings: EngineSettings) -> Any:
    """A continuous-batching manager with ``settings``, greedy decoding, EOS off, no prefix
    sharing, no CUDA graphs, synchronous batching (the defaults for SDPA attention, made explicit)."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    gen = GenerationConfig(max_new_tokens=16, do_sample=False, eos_token_id=-1, pad_token_id=0)
    cb = ContinuousBatchingConfig(block_size=settings.block_size, num_blocks=settings.num_blocks,
                                  max_batch_tokens=settings.max_batch_tokens,
                                  max_requests_per_batch=settings.max_batch_size, allow_block_sharing=False,
                                  use_cuda_graph=False, use_async_batching=False, scheduler_type="fifo")
    model.set_attn_implementation(ATTENTION)
    mgr = model.init_continuous_batching(generation_config=gen, continuous_batching_config=cb)
    mgr.warmup()                 # creates the batch processor (no graphs to capture here)
    return mgr


def resolved_settings(mgr: Any) -> dict[str, object]:
    """The settings the manager actually runs with, read back from its cache and config."""
    bp = mgr.batch_processor
    cfg = mgr.continuous_batching_config
    return {"block_size": bp.cache.block_size, "num_blocks": bp.cache.num_blocks,
            "max_batch_tokens": bp.cache.max_batch_tokens, "max_batch_size": cfg.max_requests_per_batch,
            "use_cuda_graph": str(cfg.use_cuda_graph), "use_async_batching": cfg.use_async_batching,
            "scheduler": cfg.scheduler_type, "safety_margin": bp.scheduler.safety_margin,
            "attn_implementation": mgr.model.config._attn_implementation}


class StepLog:
    """Per-step records: what the scheduler put in the batch and when each phase ran.

    Wraps the batch processor's ``scheduler.schedule_batch`` and ``update_batch`` on the instance
    and hooks the model's forward. ``marker`` launches a tiny spin kernel at every step start so a
    profiler trace can be cut into steps.
    """

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []
        self.fwd: list[tuple[float, float]] = []
        self.ends: list[float] = []
        self.marker = False
        self.t_origin = time.perf_counter()
        self._t_fwd = math.nan

    def attach(self, mgr: Any) -> None:
        import torch

        bp = mgr.batch_processor
        sched = bp.scheduler
        orig_schedule, orig_update = sched.schedule_batch, bp.update_batch
        cuda = torch.cuda.is_available()

        def schedule_batch(*args: Any, **kwargs: Any) -> Any:
            out = orig_schedule(*args, **kwargs)
            batch = out[0]
            if batch:
                if self.marker and cuda:
                    torch.cuda._sleep(16)
                self.steps.append(describe(batch, time.perf_counter()))
            return out

        def update_batch(*args: Any, **kwargs: Any) -> Any:
            res = orig_update(*args, **kwargs)
            self.ends.append(time.perf_counter())
            return res

        sched.schedule_batch = schedule_batch
        bp.update_batch = update_batch
        mgr.model.register_forward_pre_hook(self._pre)
        mgr.model.register_forward_hook(self._post)

    def _pre(self, *_: Any) -> None:
        self._t_fwd = time.perf_counter()

    def _post(self, *_: Any) -> None:
        self.fwd.append((self._t_fwd, time.perf_counter()))

    def rows(self, start: int, stop: int, t0: float) -> list[dict[str, float]]:
        """Steps ``start..stop-1`` with times relative to ``t0``: wall (schedule to next schedule,
        or to the end of its update when the engine went idle after it) and host forward time."""
        out = []
        n = min(stop, len(self.steps), len(self.fwd), len(self.ends))
        for i in range(start, n):
            s = dict(self.steps[i])
            t, end = s.pop("t"), self.ends[i]
            nxt = self.steps[i + 1]["t"] if i + 1 < len(self.steps) else math.inf
            s["t_s"] = t - t0
            s["wall_s"] = (nxt - t) if nxt - end < 1e-3 else (end - t)
            s["fwd_host_s"] = self.fwd[i][1] - self.fwd[i][0]
            s["update_end_s"] = end - t0
            out.append(s)
        return out


def describe(batch: list[Any], t: float) -> dict[str, float]:
    """Shape of one scheduled batch: decodes (sequences with a generated token) and prompt chunks."""
    pf_seqs = pf_tokens = dec_seqs = 0
    pf_pairs = pf_kv = dec_ctx = 0.0
    for fs in batch:
        st, q = fs.state, fs.query_length
        past = st.position_offset
        if st.generated_tokens:
            dec_seqs += 1
            dec_ctx += past + q
        else:
            pf_seqs += 1
            pf_tokens += q
            pf_pairs += q * past + q * (q + 1) / 2
            pf_kv += past + q
    return {"t": t, "seqs": len(batch), "prefill_seqs": pf_seqs, "prefill_tokens": pf_tokens,
            "prefill_pairs": pf_pairs, "prefill_kv": pf_kv, "decode_seqs": dec_seqs, "decode_ctx": dec_ctx}


def run_point(mgr: Any, point: Point, prompts: np.ndarray, outputs: np.ndarray, arrivals: np.ndarray | None,
              vocab: int, rep: int, deadline: float, poll_s: float = 0.05) -> tuple[list[dict[str, Any]], float]:
    """Replay one point; returns (one row per request, the point's start on the perf_counter clock).

    Open loop: request i is submitted at ``arrivals[i]`` seconds after the start. Closed loop:
    ``point.concurrency`` requests at the start, then one more whenever one completes. Requests
    still running at ``deadline`` (perf_counter) are cancelled and recorded with an error."""
    n = len(prompts)
    ids = [prompt_ids(int(prompts[i]), vocab, 1_000_003 * (point.offset + i) + 17) for i in range(n)]
    rid = [f"{point.name}-r{rep}-{i}" for i in range(n)]
    sub = np.full(n, np.nan)
    rows: dict[int, dict[str, Any]] = {}
    index = {r: i for i, r in enumerate(rid)}
    t0 = time.perf_counter()
    nxt = 0

    def submit(i: int) -> None:
        sub[i] = time.perf_counter() - t0
        mgr.add_request(ids[i], request_id=rid[i], max_new_tokens=int(outputs[i]), record_timestamps=True,
                        eos_token_id=-1)

    if arrivals is None:
        for _ in range(min(point.concurrency, n)):
            submit(nxt)
            nxt += 1
    while len(rows) < n:
        now = time.perf_counter() - t0
        if arrivals is not None:
            while nxt < n and arrivals[nxt] <= now:
                submit(nxt)
                nxt += 1
            wait = poll_s if nxt >= n else min(poll_s, max(arrivals[nxt] - now, 0.0))
        else:
            wait = poll_s
        if time.perf_counter() > deadline or not mgr.is_running():
            why = "deadline" if mgr.is_running() else "engine stopped"
            for i in range(n):
                if i not in rows:
                    if not math.isnan(sub[i]):
                        mgr.cancel_request(rid[i])
                    rows[i] = {"error": why}
            break
        res = mgr.get_result(timeout=max(wait, 1e-4))
        if res is None or not res.is_finished() or res.request_id not in index:
            continue
        i = index[res.request_id]
        rows[i] = result_row(res, t0, time.perf_counter() - t0)
        if arrivals is None and nxt < n:
            submit(nxt)
            nxt += 1
    out = []
    for i in range(n):
        base = {"point": point.name, "kind": point.kind, "rep": rep, "i": i, "request_id": rid[i],
                "prompt_tokens": int(prompts[i]), "output_tokens": int(outputs[i]),
                "scheduled_s": float(arrivals[i]) if arrivals is not None else math.nan, "arrival_s": sub[i]}
        out.append({**base, **rows.get(i, {"error": "missing"})})
    return out, t0


def result_row(res: Any, t0: float, received: float) -> dict[str, Any]:
    """Times of one finished request relative to ``t0`` (seconds); token offsets in ms after the first token."""
    ts = list(res.timestamps or [])
    first = ts[0] - t0 if ts else math.nan
    offsets = " ".join(f"{(t - ts[0]) * 1e3:.2f}" for t in ts[1:]) if ts else ""
    return {"generated_tokens": len(res.generated_tokens), "created_s": res.created_time - t0,
            "admitted_s": res.lifespan[0] - t0, "first_token_s": first,
            "last_token_s": ts[-1] - t0 if ts else math.nan, "finished_s": res.lifespan[1] - t0,
            "received_s": received, "error": res.error or "", "token_offsets_ms": offsets}
