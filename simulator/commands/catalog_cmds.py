"""``servesim models``, ``servesim gpus``, ``servesim engines``: list the catalogs."""
from __future__ import annotations

import argparse

from ..catalog.engine_scheduler import EngineScheduler
from ..tables import render, table
from .registry import print_json, subcommand


@subcommand
def register(sub: argparse._SubParsersAction) -> None:
    for name, helptext in (("models", "list catalog models"), ("gpus", "list GPU profiles"),
                           ("engines", "list engine profiles")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler=run, what=name)


def rows(what: str) -> list[dict]:
    """One dict per catalog entry, for printing."""
    if what == "models":
        from ..catalog.models import catalog_entry, list_models, load_model
        from ..perf.memory import param_count

        out = []
        for n in list_models():
            m = load_model(n)
            pc = param_count(m)
            out.append({"name": n, "hf_id": catalog_entry(n)["hf_id"], "params_b": round(pc.total / 1e9, 2), "active_b": round(pc.active / 1e9, 2),
                        "layers": m.num_layers, "hidden": m.hidden_size, "kv_heads": m.num_kv_heads,
                        "attention": "mla" if m.mla else "gqa", "moe": bool(m.moe)})
        return out
    if what == "gpus":
        from ..catalog.gpus import list_gpus, load_gpu

        out = []
        for n in list_gpus():
            g = load_gpu(n)
            bf = g.dense_tflops.get("bf16") or g.dense_tflops.get("fp16") or g.dense_tflops.get("fp32")
            out.append({"name": n, "bf16_dense_tflops": bf.value if bf else None,
                        "memory_gb": g.memory_gb.value, "bandwidth_tbps": g.memory_bandwidth_tbps.value,
                        "efficiency": g.efficiency.status})
        return out
    from ..catalog.engines import list_engines, load_engine

    out = []
    for n in list_engines():
        e = load_engine(n)
        k = e.kernels
        out.append({"name": n, "version": e.version or "", "status": e.status,
                    "kernels": f"{k.attention_prefill}/{k.attention_decode}, {k.gemm}, all-reduce {k.all_reduce}, "
                               f"MoE dispatch {k.moe_dispatch}",
                    "scheduler": _scheduler(e.scheduler),
                    "host_overlap": e.overlap_host, "host_overlap_since": e.overlap_host_since,
                    "description": e.description, "source": e.source})
    return out


def _scheduler(rules: EngineScheduler | None) -> str:
    """One line for an engine's scheduler block: admission, who a KV shortage evicts, what a step holds."""
    if rules is None:
        return "generic"
    steps = "prefill and decodes in one step" if rules.mixed_batches else "prefill or decodes per step"
    return f"{rules.admission} admission, {rules.victim} evicted, {steps}"


def run(a: argparse.Namespace) -> int:
    data = rows(a.what)
    if a.json:
        print_json(data)
        return 0
    if not data:
        return 0
    keys = [k for k in data[0] if k != "source"]   # sources: --json
    caption = ("hf_id variants (org prefix, -Instruct, -it, -FP8, ...) resolve to the same entry: "
               "see simulator/catalog/hf_ids.py" if a.what == "models" else None)
    out = table(keys, caption=caption, left=keys, lines=a.what == "engines")
    for r in data:
        out.add_row(*("" if r[k] is None else str(r[k]) for k in keys))
    print(render(out))
    return 0
