"""``servesim estimate``: one kernel, one collective or one forward step."""
from __future__ import annotations

import argparse

from .registry import finite_float, print_json, subcommand
from ..perf.estimate import estimate_op, estimate_step
from ..tables import grid, render, table


@subcommand
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="predict the time of one operation or one forward step")
    p.add_argument("--gpu", required=True, help="GPU profile name (servesim gpus)")
    p.add_argument("--op", help="gemm | attention-prefill | attention-decode | all-reduce | all-gather")
    p.add_argument("--model", help="catalog name or path to a Hugging Face config.json")
    p.add_argument("--phase", help="prefill | decode (with --model)")
    for name in ("m", "k", "n", "batch", "seq", "kv-len", "q-heads", "kv-heads", "head-dim", "gpus",
                 "context"):
        p.add_argument(f"--{name}", type=int)
    p.add_argument("--bytes", type=finite_float, help="message bytes per GPU (collectives)")
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--cuda-graph", action="store_true", help="collective replayed from a CUDA graph")
    p.add_argument("--tp", type=int, default=1)
    p.add_argument("--pp", type=int, default=1)
    p.add_argument("--weight-dtype", default="bf16")
    p.add_argument("--kv-dtype", default="bf16")
    p.add_argument("--engine", default="fused")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def run(a: argparse.Namespace) -> int:
    from ..errors import InputError

    if a.model:
        if a.op:
            raise InputError("op", a.op, "give either --op or --model with --phase, not both")
        res = estimate_step(a.model, a.gpu, a.phase or "", batch=a.batch if a.batch is not None else 0,
                            seq=a.seq, context=a.context, tp=a.tp, pp=a.pp, weight_dtype=a.weight_dtype,
                            kv_dtype=a.kv_dtype, engine=a.engine)
    elif a.op:
        res = estimate_op(a.gpu, a.op, m=a.m, k=a.k, n=a.n, dtype=a.dtype, batch=a.batch, seq=a.seq,
                          kv_len=a.kv_len, q_heads=a.q_heads, kv_heads=a.kv_heads, head_dim=a.head_dim,
                          nbytes=a.bytes, gpus=a.gpus, cuda_graph=a.cuda_graph)
    else:
        raise InputError("op", None, "give --op OP, or --model MODEL with --phase prefill|decode")
    if a.json:
        print_json(res)
    else:
        _print_table(res)
    return 0


def _print_table(res: dict) -> None:
    title = res.get("model", res.get("op"))
    t = table(["operation", "ms", "share", "bound"], left=["bound"],
              title=f"{title} on {res['gpu']}: {res['seconds'] * 1e3:.4f} ms")
    for kind, sec in sorted(res["breakdown"].items(), key=lambda kv: -kv[1]):
        share = sec / res["seconds"] if res["seconds"] else 0.0
        t.add_row(kind, f"{sec * 1e3:.4f}", f"{share:.1%}", str(res["bound"].get(kind, "")))
    extra = [(key, str(res[key])) for key in ("wall_seconds", "kernels", "kv_cache_tokens_capacity",
                                             "efficiency_status") if key in res]
    print(render(t, grid(extra)) if extra else render(t))
