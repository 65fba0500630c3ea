"""Whole-model forward timings with Hugging Face transformers models built from config.

Weights are random (no downloads): ``AutoModelForCausalLM.from_config`` in bf16 with
``attn_implementation="sdpa"``, created directly on the device. Prefill runs a batch of fresh
prompts without a cache; decode runs one new token per sequence against a ``DynamicCache``
already holding ``context`` tokens per sequence. The cache is filled with random K/V through
``DynamicCache.update`` (recorded as ``cache_fill=random``): the next step's kernels and bytes do
not depend on the values, and a real prefill of every point would cost more device time than
the whole suite. Each point records the synchronised wall time, the summed kernel time and the
kernel count from ``torch.profiler``; one prefill and one decode point per model also get a
per-kernel-name breakdown in whole_model_kernels.csv.
"""
from __future__ import annotations

import gc
import inspect
import time
from typing import Any

from .context import RunContext
from .io import percentiles
from .shapes import (
    MODELS,
    TINY,
    WM_BREAKDOWN,
    WM_DECODE,
    WM_MODELS,
    WM_OPTIONAL,
    WM_OPTIONAL_DECODE,
    WM_OPTIONAL_PREFILL,
    WM_PREFILL,
    ModelSpec,
    model_kv_bytes,
)
from .timing import profile_kernels

WALL_REPEATS = 5
KERNEL_NAME_CHARS = 300


def hf_config(spec: ModelSpec) -> Any:
    """A transformers config with the spec's numbers (model_type llama, qwen3 or qwen3_moe)."""
    from transformers import AutoConfig

    kw: dict[str, Any] = dict(vocab_size=spec.vocab, hidden_size=spec.hidden, num_hidden_layers=spec.layers,
                              num_attention_heads=spec.heads, num_key_value_heads=spec.kv_heads,
                              head_dim=spec.head_dim, tie_word_embeddings=spec.tied,
                              max_position_embeddings=131072)
    if spec.experts:
        return AutoConfig.for_model("qwen3_moe", intermediate_size=spec.ffn * spec.topk,
                                    moe_intermediate_size=spec.ffn, num_experts=spec.experts,
                                    num_experts_per_tok=spec.topk, decoder_sparse_step=1,
                                    mlp_only_layers=[], norm_topk_prob=True, **kw)
    model_type = "qwen3" if spec.name.startswith("qwen3") else "llama"
    return AutoConfig.for_model(model_type, intermediate_size=spec.ffn, **kw)


def build(spec: ModelSpec, device: str) -> Any:
    """The model with random bf16 weights on ``device``, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    cfg = hf_config(spec)
    with torch.device(device):
        try:
            model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="sdpa")
        except TypeError:
            model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16,
                                                     attn_implementation="sdpa")
    model = model.to(device=device, dtype=torch.bfloat16)
    return model.eval()


def fill_cache(model: Any, batch: int, context: int, device: str) -> Any:
    """A DynamicCache holding ``context`` random K/V tokens per sequence in every layer."""
    import torch
    from transformers import DynamicCache

    cfg = model.config
    try:
        cache = DynamicCache(config=cfg)
    except TypeError:
        cache = DynamicCache()
    shape = (batch, cfg.num_key_value_heads, context, cfg.head_dim)
    for layer in range(cfg.num_hidden_layers):
        cache.update(torch.randn(shape, device=device, dtype=torch.bfloat16),
                     torch.randn(shape, device=device, dtype=torch.bfloat16), layer)
    return cache


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _wall(step: Any, after: Any, device: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
        after()
    return times


def measure_model(ctx: RunContext, spec: ModelSpec, prefill: tuple[tuple[int, int], ...],
                  decode: tuple[tuple[int, int], ...], until: float = float("inf")) -> int:
    """All points of one model (none started after monotonic time ``until``); returns rows written."""
    import torch

    log, klog = ctx.csv("whole_model"), ctx.csv("whole_model_kernels")
    todo = [("prefill", b, s, 0) for b, s in prefill] + [("decode", b, 1, c) for b, c in decode]
    todo = [p for p in todo if not log.has(dict(zip(("phase", "batch", "seq", "context"), p[:4]),
                                                     model=spec.name))]
    if not todo:
        return 0
    t0 = time.perf_counter()
    model = build(spec, ctx.device)
    params = sum(p.numel() for p in model.parameters())
    keep = "logits_to_keep" in inspect.signature(model.forward).parameters
    ctx.log(f"whole_model {spec.name}: built in {time.perf_counter() - t0:.1f} s, {params / 1e9:.2f} B params")
    written = 0
    for phase, b, s, c in todo:
        if ctx.out_of_time() or time.monotonic() >= until:
            ctx.log(f"whole_model {spec.name}: out of time before {phase} b={b} seq={s} ctx={c}")
            break
        if ctx.device == "cuda" and phase == "decode":
            free, _ = torch.cuda.mem_get_info()
            if model_kv_bytes(spec, b, c) > 0.6 * free:
                ctx.log(f"whole_model {spec.name}: decode b={b} ctx={c} skipped (KV cache exceeds 60% of free memory)")
                continue
        try:
            with torch.inference_mode():
                row = _point(ctx, model, spec, phase, b, s, c, keep=keep)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            ctx.log(f"whole_model {spec.name} {phase} b={b} seq={s} ctx={c}: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0]}")
            gc.collect()
            torch.cuda.empty_cache() if ctx.device == "cuda" else None
            continue
        by_name = row.pop("_by_name")
        log.append({**row, "params": params, "attn_impl": "sdpa", "dtype": "bf16"})
        written += 1
        if ctx.device == "cuda" and WM_BREAKDOWN.get(phase) == (b, s if phase == "prefill" else c):
            key = {k: row[k] for k in ("model", "phase", "batch", "seq", "context")}
            for name, (count, total) in sorted(by_name.items(), key=lambda kv: -kv[1][1]):
                r = {**key, "kernel": name[:KERNEL_NAME_CHARS]}
                if not klog.has(r):
                    klog.append({**r, "count": count, "total_s": total})
    del model
    gc.collect()
    if ctx.device == "cuda":
        torch.cuda.empty_cache()
    return written


def _point(ctx: RunContext, model: Any, spec: ModelSpec, phase: str, b: int, s: int, c: int, *,
           keep: bool) -> dict[str, Any]:
    import torch

    dev = ctx.device
    vocab = model.config.vocab_size
    if phase == "prefill":
        ids = torch.randint(0, vocab, (b, s), device=dev)
        kw: dict[str, Any] = {"logits_to_keep": 1} if keep else {}

        def step() -> Any:
            return model(input_ids=ids, use_cache=False, **kw)

        def after() -> None:
            return None
        fill, logits = "none", ("last" if keep else "all")
    else:
        cache = fill_cache(model, b, c, dev)
        tok = torch.randint(0, vocab, (b, 1), device=dev)

        def step() -> Any:
            return model(input_ids=tok, past_key_values=cache, use_cache=True)

        def after() -> None:
            cache.crop(-1)      # back to ``c`` tokens: every repeat sees the same context
        fill, logits = "random", "last"
    for _ in range(2):
        step()
        after()
    times = _wall(step, after, dev, WALL_REPEATS)
    med, p10, p90 = percentiles(times)
    kernel_s, kernels, by_name = None, None, {}
    if dev == "cuda":
        def run_once(_: int) -> None:
            step()
            after()
        prof = profile_kernels(run_once, 1)
        kernel_s, kernels, by_name = prof.per_call_s, int(prof.kernels_per_call), prof.by_name
    return {"model": spec.name, "phase": phase, "batch": b, "seq": s, "context": c, "tokens": b * s,
            "logits": logits, "cache_fill": fill, "wall_s": med, "wall_p10_s": p10, "wall_p90_s": p90,
            "kernel_s": kernel_s, "kernels": kernels, "repeats": len(times), "_by_name": by_name}


def run(ctx: RunContext) -> None:
    """Every model of the suite (the tiny model on CPU) into whole_model.csv."""
    import torch

    if ctx.quick and ctx.device != "cuda":
        n = measure_model(ctx, TINY, ((1, 32), (2, 64)), ((1, 64), (4, 64)))
        ctx.log(f"whole_model: {n} rows")
        return
    plan: list[tuple[ModelSpec, Any, Any]] = [(MODELS[m], WM_PREFILL, WM_DECODE) for m in WM_MODELS]
    if ctx.quick:
        plan = [(MODELS["llama-3.2-1b"], ((1, 128),), ((1, 128),))]
    elif ctx.device == "cuda" and torch.cuda.get_device_properties(0).total_memory >= 100 * 2 ** 30:
        plan += [(MODELS[m], WM_OPTIONAL_PREFILL, WM_OPTIONAL_DECODE) for m in WM_OPTIONAL]
    for i, (spec, prefill, decode) in enumerate(plan):
        until = time.monotonic() + ctx.time_left() / (len(plan) - i)
        if spec.name in WM_OPTIONAL and ctx.time_left() < 40:
            ctx.log(f"whole_model: {spec.name} skipped ({ctx.time_left():.0f} s left)")
            continue
        if ctx.out_of_time():
            ctx.log(f"whole_model: out of time before {spec.name}")
            break
        n = measure_model(ctx, spec, prefill, decode, until)
        ctx.log(f"whole_model {spec.name}: {n} rows")
