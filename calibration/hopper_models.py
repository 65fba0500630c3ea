"""Whole-model forward steps of MoE and MLA models in eager transformers, on one GPU.

    python -m calibration.hopper_models OUT [--parts moe,mla,dense] [--deadline-s 500]

Models are built from config with random bf16 weights (``AutoModelForCausalLM.from_config``,
``attn_implementation="sdpa"``): Qwen3-30B-A3B (``qwen3_moe``: 128 experts, top 8, every layer MoE)
and DeepSeek-V2-Lite (``deepseek_v2``: MLA without a query LoRA, 64 routed + 2 shared experts, top 6,
first layer dense), each at two layer counts, so that the per-layer time is the difference over the
layers added and the full model is ``t(n_lo) + (N - n_lo) * per_layer``. ``dense`` runs
Llama-3.1-8B at its full 32 layers as the reference, decode only, on a contiguous cache and on a
cropped one (see below).

Prefill runs fresh prompts without a cache. Decode runs one token per sequence against a
``DynamicCache`` holding ``context`` random tokens per layer, shaped as the model's own first step
leaves it (MLA in transformers caches the decompressed per-head K and V, not the latent). Between
repeats the cache is cut back to ``context`` tokens and, for ``cache=contiguous``, copied into fresh
contiguous tensors, as a generate loop sees it (every step's ``torch.cat`` writes a new contiguous
tensor). ``cache=cropped`` leaves the view that ``DynamicCache.crop`` makes, as calibration/whole_model.py
did. Rows: wall time (median of 5), the profiled kernel time of one step and its kernel count, and
per-kernel-name totals of one decode point per model into ``hopper_model_kernels.csv``.
"""
from __future__ import annotations

import gc
import time
from typing import Any

from .hopper_kernels import run_parts
from simulator.calibration.io import CsvLog, Schema, percentiles

SOURCE_NOTE = "config values as in simulator/catalog/models/<name>.yaml"
#: transformers config kwargs per model: (model_type, kwargs, full layer count, (n_lo, n_hi))
MODELS: dict[str, tuple[str, dict[str, Any], int, tuple[int, int]]] = {
    "qwen3-30b-a3b": ("qwen3_moe", dict(
        vocab_size=151936, hidden_size=2048, num_attention_heads=32, num_key_value_heads=4, head_dim=128,
        intermediate_size=6144, moe_intermediate_size=768, num_experts=128, num_experts_per_tok=8,
        decoder_sparse_step=1, mlp_only_layers=[], norm_topk_prob=True, tie_word_embeddings=False,
        max_position_embeddings=40960), 48, (2, 6)),
    "deepseek-v2-lite": ("deepseek_v2", dict(
        vocab_size=102400, hidden_size=2048, intermediate_size=10944, moe_intermediate_size=1408,
        num_attention_heads=16, num_key_value_heads=16, n_routed_experts=64, n_shared_experts=2,
        num_experts_per_tok=6, first_k_dense_replace=1, moe_layer_freq=1, kv_lora_rank=512, q_lora_rank=None,
        qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128, head_dim=64, norm_topk_prob=False,
        topk_method="greedy", n_group=1, topk_group=1, tie_word_embeddings=False,
        max_position_embeddings=163840), 27, (3, 7)),
    "llama-3.1-8b": ("llama", dict(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
        num_key_value_heads=8, head_dim=128, tie_word_embeddings=False, max_position_embeddings=131072), 32, (32, 32)),
}
PREFILL = ((1, 512), (4, 512), (1, 2048))
DECODE = ((1, 1024), (8, 1024), (32, 1024), (32, 4096))
DENSE_DECODE = ((8, 1024), (32, 1024), (128, 1024), (128, 2048))
BREAKDOWN = (8, 1024)
REPEATS = 5
DEVICE = "cuda"          # "cpu" only for the smoke test

WM = Schema("hopper_models", ("model", "layers", "full_layers", "phase", "batch", "seq", "context", "cache",
                              "wall_s", "wall_p10_s", "wall_p90_s", "kernel_s", "kernels", "repeats", "params",
                              "experts_impl", "cache_shapes"),
            ("model", "layers", "phase", "batch", "seq", "context", "cache"))
WMK = Schema("hopper_model_kernels", ("model", "layers", "phase", "batch", "context", "cache", "kernel", "count",
                                      "total_s"),
             ("model", "layers", "phase", "batch", "context", "cache", "kernel"))


def build(name: str, layers: int) -> Any:
    """The model with ``layers`` decoder layers and random bf16 weights on the GPU, eval mode."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, kw, _, _ = MODELS[name]
    cfg = AutoConfig.for_model(model_type, num_hidden_layers=layers, **kw)
    with torch.device(DEVICE):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="sdpa")
    return model.to(device=DEVICE, dtype=torch.bfloat16).eval()


def _layers(cache: Any) -> list[Any]:
    return list(cache.layers)


def cache_like(model: Any, batch: int, context: int) -> tuple[Any, str]:
    """A DynamicCache of ``context`` random tokens per layer, shaped as the model's first step makes it."""
    import torch
    from transformers import DynamicCache

    probe = DynamicCache(config=model.config)
    model(input_ids=torch.zeros(batch, 1, dtype=torch.long, device=DEVICE), past_key_values=probe, use_cache=True)
    cache = DynamicCache(config=model.config)
    shapes = []
    for i, layer in enumerate(_layers(probe)):
        k, v = layer.keys, layer.values
        ks, vs = (*k.shape[:2], context, k.shape[3]), (*v.shape[:2], context, v.shape[3])
        cache.update(torch.randn(ks, device=DEVICE, dtype=k.dtype), torch.randn(vs, device=DEVICE, dtype=v.dtype), i)
        shapes.append(f"{list(k.shape[1:2]) + [k.shape[3]]}/{v.shape[3]}")
    return cache, shapes[0] if len(set(shapes)) == 1 else ";".join(shapes)


def reset(cache: Any, context: int, contiguous: bool) -> None:
    """Back to ``context`` tokens; contiguous copies for the generate-loop layout."""
    cache.crop(context)
    if contiguous:
        for layer in _layers(cache):
            layer.keys, layer.values = layer.keys.contiguous(), layer.values.contiguous()


def _sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def point(model: Any, phase: str, b: int, s: int, c: int, cache_mode: str) -> dict[str, Any]:
    """Wall times of ``REPEATS`` steps and one profiled step's kernels."""
    import torch

    from simulator.calibration.timing import profile_kernels

    vocab = model.config.vocab_size
    shapes = ""
    if phase == "prefill":
        ids = torch.randint(0, vocab, (b, s), device=DEVICE)

        def step() -> Any:
            return model(input_ids=ids, use_cache=False, logits_to_keep=1)

        def after() -> None:
            return None
    else:
        cache, shapes = cache_like(model, b, c)
        tok = torch.randint(0, vocab, (b, 1), device=DEVICE)
        reset(cache, c, cache_mode == "contiguous")

        def step() -> Any:
            return model(input_ids=tok, past_key_values=cache, use_cache=True)

        def after() -> None:
            reset(cache, c, cache_mode == "contiguous")
    for _ in range(2):
        step()
        after()
    times = []
    for _ in range(REPEATS):
        _sync()
        t0 = time.perf_counter()
        step()
        _sync()
        times.append(time.perf_counter() - t0)
        after()
    prof = profile_kernels(lambda _i: step(), 1)
    after()
    med, p10, p90 = percentiles(times)
    return {"wall_s": med, "wall_p10_s": p10, "wall_p90_s": p90, "kernel_s": prof.per_call_s,
            "kernels": int(prof.kernels_per_call), "repeats": len(times), "cache_shapes": shapes,
            "_by_name": prof.by_name}


def run_model(r: Any, name: str, layers: int, jobs: list[tuple[str, int, int, int, str]]) -> None:
    import torch

    log, klog = CsvLog(r.out / "hopper_models.csv", WM), CsvLog(r.out / "hopper_model_kernels.csv", WMK)
    key = lambda p: {"model": name, "layers": layers, "phase": p[0], "batch": p[1], "seq": p[2],  # noqa: E731
                     "context": p[3], "cache": p[4]}
    todo = [p for p in jobs if not log.has(key(p))]
    if not todo or r.late(f"{name}/{layers}", len(todo)):
        return
    t0 = time.perf_counter()
    model = build(name, layers)
    params = sum(p.numel() for p in model.parameters())
    impl = getattr(model.config, "_experts_implementation", None) or getattr(model.config, "experts_implementation", "")
    r.log(f"{name} {layers} layers: built in {time.perf_counter() - t0:.1f} s, {params / 1e9:.2f} B params, experts {impl}")
    for p in todo:
        if r.late(f"{name}/{layers}", 1):
            break
        try:
            with torch.inference_mode():
                row = point(model, p[0], p[1], p[2], p[3], p[4])
        except (RuntimeError, torch.cuda.OutOfMemoryError, TypeError, AttributeError) as exc:
            r.log(f"{name}/{layers} {p}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
            gc.collect()
            torch.cuda.empty_cache()
            continue
        by_name = row.pop("_by_name")
        log.append({**key(p), **row, "full_layers": MODELS[name][2], "params": params, "experts_impl": impl})
        r.log(f"{name}/{layers} {p}: wall {row['wall_s'] * 1e3:.2f} ms, kernels {row['kernel_s'] * 1e3:.2f} ms "
              f"({row['kernels']})")
        if p[0] == "decode" and (p[1], p[3]) == BREAKDOWN:
            for kname, (count, total) in by_name.items():
                klog.append({"model": name, "layers": layers, "phase": "decode", "batch": p[1], "context": p[3],
                             "cache": p[4], "kernel": kname[:300].replace("\n", " "), "count": count, "total_s": total})
    del model
    gc.collect()
    if DEVICE == "cuda":
        torch.cuda.empty_cache()


def run_part(r: Any, part: str) -> None:
    names = {"moe": ("qwen3-30b-a3b",), "mla": ("deepseek-v2-lite",), "dense": ("llama-3.1-8b",)}[part]
    for name in names:
        if part == "dense":
            jobs = [("decode", b, 1, c, mode) for mode in ("contiguous", "cropped") for b, c in DENSE_DECODE]
        else:
            jobs = [("prefill", b, s, 0, "none") for b, s in PREFILL] + \
                   [("decode", b, 1, c, "contiguous") for b, c in DECODE]
        for layers in sorted(set(MODELS[name][3])):
            run_model(r, name, layers, jobs)


def main(argv: list[str] | None = None) -> int:
    parts = {p: (lambda r, p=p: run_part(r, p)) for p in ("moe", "mla", "dense")}
    return run_parts(argv, __doc__, parts, "models-", bench=False)


if __name__ == "__main__":
    raise SystemExit(main())
