"""The deployment a scenario runs once its engine's server defaults fill the keys the user left unset.

An engine profile with a ``scheduler:`` block brings the defaults of that engine's server
(``max_num_seqs``, ``max_num_batched_tokens``, chunked prefill, prefix caching, memory share,
preemption mode). They apply to ``deployment.batching`` / ``deployment.kv_cache`` keys that the
scenario does not set (pydantic's ``model_fields_set``); keys the user set win. Batching defaults
apply to continuous batching only. This is the one place they are applied: ``system.build_pool``
and ``simulate`` call :func:`effective_deployment`, and :func:`describe` words the result for the
run's notes.
"""
from __future__ import annotations

from typing import Any

from ..catalog.engine import EngineProfile
from ..catalog.engine_scheduler import EngineScheduler
from ..catalog.engines import load_engine
from ..config.scenario import Batching, Deployment, KVCache
from ..errors import InputError

_BATCHING = (("max_num_seqs", "max_batch_size"), ("max_num_batched_tokens", "max_batched_tokens"),
             ("chunked_prefill", "chunked_prefill"))
_KV = (("prefix_caching", "prefix_caching"), ("gpu_memory_utilization", "gpu_memory_utilization"),
       ("preemption", "preemption"))


def _filled(model: Batching | KVCache, pairs: tuple[tuple[str, str], ...], sched: EngineScheduler) -> dict[str, Any]:
    """Engine defaults for the keys of ``model`` the user did not set."""
    return {key: getattr(sched, src) for src, key in pairs
            if getattr(sched, src) is not None and key not in model.model_fields_set}


def _apply(model: Batching | KVCache, values: dict[str, Any]) -> Batching | KVCache:
    if not values:
        return model
    data = {**model.model_dump(exclude_unset=True), **values}
    return type(model).model_validate(data)


def engine_for(d: Deployment) -> EngineProfile:
    """The engine profile deployment ``d`` runs: its version's kernel tables, and host overlap as
    ``d.overlap_host`` says where it is set."""
    engine = load_engine(d.engine, d.engine_version)
    if d.overlap_host is None or d.overlap_host == engine.overlap_host:
        return engine
    return engine.model_copy(update={"overlap_host": d.overlap_host})


def effective_deployment(d: Deployment) -> Deployment:
    """``d`` with its engine's server defaults in the keys it leaves unset (``d`` itself without a
    scheduler block). Idempotent: the filled keys count as set afterwards."""
    sched = load_engine(d.engine).scheduler
    if sched is None:
        return d
    b, kv = d.batching, d.kv_cache
    continuous = b.policy == "continuous"
    new_b = _apply(b, _filled(b, _BATCHING, sched)) if continuous else b
    kv_values = _filled(kv, _KV, sched)
    if not continuous:
        kv_values.pop("prefix_caching", None)   # prefix caching needs continuous batching
    new_kv = _apply(kv, kv_values)
    if new_b.policy == "continuous" and new_b.max_batched_tokens < new_b.max_batch_size:
        raise InputError("deployment.batching.max_batched_tokens", new_b.max_batched_tokens,
                         f"at least max_batch_size ({new_b.max_batch_size}); engine {d.engine} defaults "
                         f"max_batched_tokens to {sched.max_num_batched_tokens}: set it as well")
    if new_b is b and new_kv is kv:
        return d
    return d.model_copy(update={"batching": new_b, "kv_cache": new_kv})


def describe(d: Deployment) -> str | None:
    """One line for a run's notes: the engine's scheduling rules and the effective batching and KV
    settings, marking those that came from the engine (None for an engine without a scheduler block)."""
    sched = load_engine(d.engine).scheduler
    if sched is None:
        return None
    orig_b, orig_kv = d.batching, d.kv_cache
    e = effective_deployment(d)
    parts = []
    for model, orig, pairs, prefix in ((e.batching, orig_b, _BATCHING, "batching"),
                                       (e.kv_cache, orig_kv, _KV, "kv_cache")):
        for _, key in pairs:
            mark = " (engine default)" if key not in orig.model_fields_set and key in model.model_fields_set else ""
            parts.append(f"{prefix}.{key}={getattr(model, key)}{mark}")
    rules = f"admission {sched.admission}, victim {sched.victim}"
    if not sched.admit_after_preemption:
        rules += ", no admission in a step that preempted"
    return f"engine {d.engine} scheduler ({sched.version}): {rules}; " + ", ".join(parts)
