"""Attention timings through ``torch.nn.functional.scaled_dot_product_attention`` (bf16).

Prefill is causal over the new tokens; chunked prefill puts c new queries against p + c keys
with a bottom-right-aligned causal mask (``torch.nn.attention.bias.causal_lower_right``: query i
sees keys 0 .. p + i). Decode is one query per sequence against L keys, no mask. The flash
backend is forced first; GQA goes through ``enable_gqa=True`` where the backend takes it,
otherwise K/V are expanded to the query heads before timing. Each row records the backend,
GQA handling and mask that actually ran.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .context import RunContext
from .shapes import (
    causal_pairs,
    decode_bytes,
    decode_flops,
    decode_points,
    prefill_bytes,
    prefill_flops,
    prefill_points,
)

#: (backend, gqa mode) tried in this order; the first that runs is kept for the op.
ATTEMPTS = (("flash", "enable_gqa"), ("flash", "repeat_kv"), ("efficient", "enable_gqa"),
            ("efficient", "repeat_kv"), ("cudnn", "repeat_kv"), ("math", "enable_gqa"))


def _backend_enum(name: str) -> Any:
    from torch.nn.attention import SDPBackend

    return {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}[name]


def _lower_right_backend(q: Any, k: Any, v: Any, enable_gqa: bool) -> str:
    """Which kernel torch's causal_lower_right dispatch picks (flash when it can, else efficient)."""
    import torch

    try:
        params = torch.backends.cuda.SDPAParams(q, k, v, None, 0.0, False, enable_gqa)
        return "flash" if torch.backends.cuda.can_use_flash_attention(params) else "efficient"
    except Exception:
        return "unknown"


def make_call(backend: str, gqa: str, mask: str, groups: int,
              new: int, kv_len: int, device: str) -> tuple[Callable[[Any], Any], str]:
    """A function of (q, k, v) running SDPA the chosen way, and the backend label to record."""
    import torch.nn.functional as F
    from torch.nn.attention import sdpa_kernel

    bias = None
    if mask == "causal_lower_right":
        from torch.nn.attention.bias import causal_lower_right

        bias = causal_lower_right(new, kv_len)
    use_gqa = gqa == "enable_gqa" and groups > 1
    ctx_backends = [_backend_enum(backend)] if device == "cuda" else None

    def call(s: Any) -> Any:
        q, k, v = s
        kw: dict[str, Any] = {"enable_gqa": True} if use_gqa else {}
        if ctx_backends is None:
            return _sdpa(F, q, k, v, mask, bias, kw)
        with sdpa_kernel(ctx_backends):
            return _sdpa(F, q, k, v, mask, bias, kw)

    label = backend if device == "cuda" else "cpu-default"
    return call, label


def _sdpa(F: Any, q: Any, k: Any, v: Any, mask: str, bias: Any, kw: dict[str, Any]) -> Any:
    if mask == "is_causal":
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, **kw)
    if mask == "causal_lower_right":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, **kw)
    return F.scaled_dot_product_attention(q, k, v, **kw)


def _maker(batch: int, hq: int, hkv: int, d: int, new: int, kv_len: int, gqa: str, *, device: str):
    import torch

    def make() -> tuple[Any, Any, Any]:
        q = torch.randn(batch, hq, new, d, device=device, dtype=torch.bfloat16)
        k = torch.randn(batch, hkv, kv_len, d, device=device, dtype=torch.bfloat16)
        v = torch.randn(batch, hkv, kv_len, d, device=device, dtype=torch.bfloat16)
        if gqa == "repeat_kv" and hq != hkv:
            k = k.repeat_interleave(hq // hkv, dim=1)
            v = v.repeat_interleave(hq // hkv, dim=1)
        return q, k, v

    return make


class _Chooser:
    """Finds, once per (op, GQA or not), the first backend / GQA mode that runs."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.chosen: dict[tuple[str, bool, bool], tuple[str, str]] = {}

    def pick(self, op: str, mask: str, b: int, hq: int, hkv: int, d: int, *, new: int, kv_len: int
             ) -> tuple[Callable[[Any], Any], str, str, Callable[[], Any]]:
        key = (op, hq != hkv, kv_len > new and mask == "causal_lower_right")   # lower-right path differs
        tries = [self.chosen[key]] if key in self.chosen else list(ATTEMPTS)
        if self.ctx.device != "cuda":
            tries = [("default", "enable_gqa")]
        last: Exception | None = None
        for backend, gqa in tries:
            if hq == hkv:
                gqa = "none"
            call, label = make_call(backend, gqa, mask, hq // hkv, new, kv_len, self.ctx.device)
            make = _maker(b, hq, hkv, d, new, kv_len, gqa, device=self.ctx.device)
            new_t = min(new, 64)
            probe = _maker(1, hq, hkv, d, new_t, new_t + min(kv_len - new, 64), gqa, device=self.ctx.device)
            try:
                call_probe, _ = make_call(backend, gqa, mask, hq // hkv, new_t,
                                          new_t + min(kv_len - new, 64), self.ctx.device)
                call_probe(probe())
            except RuntimeError as exc:
                last = exc
                continue
            if key not in self.chosen:
                self.chosen[key] = (backend, gqa)
                self.ctx.log(f"attention {op} (gqa={key[1]}, prefix={key[2]}): backend {backend}, gqa {gqa}")
            return call, label, gqa, make
        raise RuntimeError(f"no SDPA backend ran {op}: {last}")


def run_prefill(ctx: RunContext) -> None:
    """Causal and chunked prefill points into attention_prefill.csv."""
    import torch

    log = ctx.csv("attention_prefill")
    chooser = _Chooser(ctx)
    points = prefill_points(ctx.quick)
    done = 0
    for idx, (op, b, (hq, hkv, d), new, prefix) in enumerate(points):
        row = {"op": op, "batch": b, "q_heads": hq, "kv_heads": hkv, "head_dim": d, "new_tokens": new,
               "prefix": prefix}
        if log.has(row):
            continue
        if ctx.out_of_time():
            ctx.log(f"attention_prefill: {len(points) - idx} points left for lack of time")
            break
        kv_len = prefix + new
        mask = "is_causal" if op == "prefill" else "causal_lower_right"
        try:
            call, label, gqa, make = chooser.pick(op, mask, b, hq, hkv, d, new=new, kv_len=kv_len)
            if mask == "causal_lower_right" and ctx.device == "cuda" and prefix > 0:
                q, k, v = make()
                label = _lower_right_backend(q, k, v, gqa == "enable_gqa" and hq != hkv)
                del q, k, v
            nbytes = prefill_bytes(b, hq, hkv, d, new, prefix)
            meas = ctx.bench.run(make, call, set_bytes=nbytes)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            ctx.log(f"attention_prefill {row}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            torch.cuda.empty_cache() if ctx.device == "cuda" else None
            continue
        log.append({**row, "dtype": "bf16", "kv_len": kv_len, "causal_pairs": causal_pairs(new, prefix),
                    "flops": prefill_flops(b, hq, d, new, prefix), "bytes": nbytes, **meas.row(),
                    **ctx.clocks(), "backend": label, "gqa": gqa, "mask": mask})
        done += 1
    ctx.log(f"attention_prefill: {done} points measured")


def run_decode(ctx: RunContext) -> None:
    """One-query-per-sequence decode points into attention_decode.csv."""
    import torch

    log = ctx.csv("attention_decode")
    chooser = _Chooser(ctx)
    points = decode_points(ctx.quick)
    done = 0
    for idx, (b, (hq, hkv, d), L) in enumerate(points):
        row = {"op": "decode", "batch": b, "q_heads": hq, "kv_heads": hkv, "head_dim": d, "kv_len": L}
        if log.has(row):
            continue
        if ctx.out_of_time():
            ctx.log(f"attention_decode: {len(points) - idx} points left for lack of time")
            break
        try:
            call, label, gqa, make = chooser.pick("decode", "none", b, hq, hkv, d, new=1, kv_len=L)
            nbytes = decode_bytes(b, hq, hkv, d, L)
            meas = ctx.bench.run(make, call, set_bytes=nbytes)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            ctx.log(f"attention_decode {row}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            torch.cuda.empty_cache() if ctx.device == "cuda" else None
            continue
        log.append({**row, "dtype": "bf16", "flops": decode_flops(b, hq, d, L), "bytes": nbytes,
                    **meas.row(), **ctx.clocks(), "backend": label, "gqa": gqa})
        done += 1
    ctx.log(f"attention_decode: {done} points measured")
