"""Hopper kernels that the serving engines' kernel databases do not cover, timed with torch.

    python -m calibration.hopper_kernels OUT [--parts cudnn,kvcat,flash,fp8] [--deadline-s 500]

Parts, in this order (each point is appended and flushed at once; a rerun over the same OUT skips
the points already there):

- ``cudnn``: causal prefill and one-query decode through torch's cuDNN SDPA backend
  (``sdpa_kernel(SDPBackend.CUDNN_ATTENTION)``; on sm90 cuDNN runs its own fused attention kernels,
  the FlashAttention-3 class), bf16, rows in the suite's ``attention_prefill`` / ``attention_decode``
  columns with ``backend=cudnn`` so that ``simulator.calibration.fit`` reads them.
- ``kvcat``: Hugging Face DynamicCache's concatenation, ``torch.cat([cache, new], dim=-2)`` on one
  ``[batch, kv_heads, L, head_dim]`` bf16 tensor with one new token, on a contiguous cache (as every
  step of a generate loop sees it: the previous cat's output) and on a cropped one (a view of the
  first L positions of a longer tensor, as ``DynamicCache.crop`` leaves it), into ``kv_cat.csv``.
- ``flash``: the same attention points through the FlashAttention-2 backend on the same GPU (the
  baseline that the cuDNN rows are compared with).
- ``fp8``: fp8 (e4m3) K/V for decode: fp8 q/k/v straight into cuDNN SDPA, and fp8 K/V upcast to
  bf16 before the bf16 kernel; whether each ran and its time, into ``attention_fp8.csv``.

Timing: ``simulator.calibration.timing.Bench`` (rotating random inputs, CUDA events, profiler kernel times
for short calls). torch is imported inside the functions only, so the schemas and point lists
load without it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from simulator.calibration.io import TIMING, CsvLog, Schema, open_log
from simulator.calibration.shapes import (
    causal_pairs,
    decode_bytes,
    decode_flops,
    kv_bytes,
    prefill_bytes,
    prefill_flops,
)

#: Llama-3.1-8B-like and Llama-3.1-70B-like heads (query heads, KV heads, head dim).
HOPPER_HEADS = ((32, 8, 128), (64, 8, 128))
HOPPER_PREFILL_BATCH = (1, 4, 16, 64)
HOPPER_PREFILL_SEQ = (128, 256, 512, 1024, 2048, 4096, 8192, 16384)
HOPPER_PREFILL_MAX_TOKENS = 65536
HOPPER_DECODE_BATCH = (1, 8, 32, 64, 128, 256)
HOPPER_DECODE_KV = (128, 512, 1024, 2048, 4096, 8192, 16384, 32768)
HOPPER_DECODE_MAX_KV_BYTES = 8 * 2 ** 30
KVCAT_BATCH = (1, 2, 4, 8, 16, 32, 64, 128)
KVCAT_CONTEXT = (128, 256, 512, 1024, 2048, 4096)
KVCAT_HEADS = (8, 128)              # (KV heads, head dim) of Llama-3.1-8B
KVCAT_LAYOUTS = ("contiguous", "cropped")

KV_CAT = Schema("kv_cat", ("op", "layout", "dtype", "batch", "kv_heads", "head_dim", "context", "bytes",
                           *TIMING), ("op", "layout", "batch", "kv_heads", "head_dim", "context"))
FP8 = Schema("attention_fp8", ("op", "variant", "batch", "q_heads", "kv_heads", "head_dim", "kv_len",
                               "bytes", "status", "rel_err", "event_s", "kernel_s", "kernels_per_call",
                               "error"),
             ("op", "variant", "batch", "q_heads", "kv_heads", "head_dim", "kv_len"))
FP8_POINTS = tuple((b, L) for b in (1, 8, 32, 128) for L in (1024, 4096, 16384)
                   if kv_bytes(b, 8, 128, L) <= HOPPER_DECODE_MAX_KV_BYTES)


def prefill_grid() -> list[tuple[int, tuple[int, int, int], int]]:
    """(batch, heads, prompt) of the causal prefill points, at most 64k tokens per call."""
    return [(b, cfg, s) for cfg in HOPPER_HEADS for b in HOPPER_PREFILL_BATCH for s in HOPPER_PREFILL_SEQ
            if b * s <= HOPPER_PREFILL_MAX_TOKENS]


def decode_grid() -> list[tuple[int, tuple[int, int, int], int]]:
    """(batch, heads, KV length) of the decode points, the KV cache capped at 8 GiB."""
    return [(b, cfg, L) for cfg in HOPPER_HEADS for b in HOPPER_DECODE_BATCH for L in HOPPER_DECODE_KV
            if kv_bytes(b, cfg[1], cfg[2], L) <= HOPPER_DECODE_MAX_KV_BYTES]


def kvcat_bytes(batch: int, kv_heads: int, head_dim: int, context: int, elem: float = 2.0) -> float:
    """One tensor's concatenation: read the cache and the new token, write context + 1 tokens."""
    per_token = batch * kv_heads * head_dim * elem
    return per_token * (context + 1) * 2


class Runner:
    """Output folder, timer, deadline and log shared by the parts."""

    def __init__(self, out: Path, deadline_s: float, bench: bool = True) -> None:
        from simulator.calibration.timing import Bench

        self.out = out
        self.bench = Bench("cuda") if bench else None
        self.deadline = time.monotonic() + deadline_s
        self.logf = (out / "log.txt").open("a")

    def log(self, msg: str) -> None:
        line = f"[hopper {time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        self.logf.write(line + "\n")
        self.logf.flush()

    def late(self, part: str, left: int) -> bool:
        if time.monotonic() < self.deadline:
            return False
        self.log(f"{part}: deadline reached, {left} points left")
        return True


def _sdpa_call(backend: str, gqa: str, causal: bool) -> Any:
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    enum = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}[backend]
    kw = {"enable_gqa": True} if gqa == "enable_gqa" else {}

    def call(s: Any) -> Any:
        q, k, v = s
        with sdpa_kernel([enum]):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, **kw)
    return call


def _maker(b: int, hq: int, hkv: int, d: int, nq: int, nk: int, gqa: str) -> Any:
    import torch

    def make() -> tuple[Any, Any, Any]:
        q = torch.randn(b, hq, nq, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(b, hkv, nk, d, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(b, hkv, nk, d, device="cuda", dtype=torch.bfloat16)
        if gqa == "repeat_kv" and hq != hkv:
            k, v = k.repeat_interleave(hq // hkv, dim=1), v.repeat_interleave(hq // hkv, dim=1)
        return q, k, v
    return make


def check_error(backend: str, gqa: str, causal: bool, hq: int, hkv: int, nq: int, nk: int) -> float:
    """Relative error of the backend against fp32 math attention on fresh random inputs."""
    import torch.nn.functional as F

    q, k, v = _maker(2, hq, hkv, 128, nq, nk, gqa)()
    out = _sdpa_call(backend, gqa, causal)((q, k, v)).float()
    kr, vr = k.float(), v.float()
    if kr.shape[1] != hq:
        kr, vr = kr.repeat_interleave(hq // hkv, dim=1), vr.repeat_interleave(hq // hkv, dim=1)
    ref = F.scaled_dot_product_attention(q.float(), kr, vr, is_causal=causal)
    return float((out - ref).norm() / ref.norm())


def _choose_gqa(r: Runner, backend: str, causal: bool, hq: int, hkv: int) -> tuple[str, float]:
    """enable_gqa where the backend takes it, else K/V expanded to the query heads (checked once)."""
    last = ""
    for gqa in ("enable_gqa", "repeat_kv"):
        try:
            err = check_error(backend, gqa, causal, hq, hkv, 256 if causal else 1, 512)
        except RuntimeError as exc:
            last = str(exc).splitlines()[0][:200]
            continue
        if err < 2e-2:
            r.log(f"{backend} causal={causal} heads {hq}/{hkv}: gqa {gqa}, rel err {err:.2e}")
            return gqa, err
        last = f"rel err {err:.2e}"
    raise RuntimeError(f"{backend} causal={causal} did not run correctly: {last}")


def run_attention(r: Runner, backend: str) -> None:
    """Causal prefill then decode points of one backend into the suite's attention CSVs."""
    import torch

    pre, dec = open_log(r.out, "attention_prefill"), open_log(r.out, "attention_decode")
    if backend == "flash":      # the baseline goes into files of its own
        pre = CsvLog(r.out / "flash_attention_prefill.csv", pre.schema)
        dec = CsvLog(r.out / "flash_attention_decode.csv", dec.schema)
    clocks = {"sm_clock_mhz": None, "power_w": None}
    chosen: dict[tuple[bool, int, int], str] = {}
    jobs = [("prefill", b, cfg, s) for b, cfg, s in prefill_grid()] + \
           [("decode", b, cfg, L) for b, cfg, L in decode_grid()]
    for i, (op, b, (hq, hkv, d), n) in enumerate(jobs):
        causal = op == "prefill"
        key = ({"op": op, "batch": b, "q_heads": hq, "kv_heads": hkv, "head_dim": d, "new_tokens": n, "prefix": 0}
               if causal else {"op": op, "batch": b, "q_heads": hq, "kv_heads": hkv, "head_dim": d, "kv_len": n})
        log = pre if causal else dec
        if log.has(key):
            continue
        if r.late(f"{backend} attention", len(jobs) - i):
            return
        try:
            if (causal, hq, hkv) not in chosen:
                chosen[(causal, hq, hkv)] = _choose_gqa(r, backend, causal, hq, hkv)[0]
            gqa = chosen[(causal, hq, hkv)]
            nq, nk = (n, n) if causal else (1, n)
            nbytes = prefill_bytes(b, hq, hkv, d, n, 0) if causal else decode_bytes(b, hq, hkv, d, n)
            meas = r.bench.run(_maker(b, hq, hkv, d, nq, nk, gqa), _sdpa_call(backend, gqa, causal), nbytes)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            r.log(f"{backend} {key}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            torch.cuda.empty_cache()
            continue
        if causal:
            log.append({**key, "dtype": "bf16", "kv_len": n, "causal_pairs": causal_pairs(n, 0),
                        "flops": prefill_flops(b, hq, d, n, 0), "bytes": nbytes, **meas.row(), **clocks,
                        "backend": backend, "gqa": gqa, "mask": "is_causal"})
        else:
            log.append({**key, "dtype": "bf16", "flops": decode_flops(b, hq, d, n), "bytes": nbytes,
                        **meas.row(), **clocks, "backend": backend, "gqa": gqa})
    r.log(f"{backend} attention: {len(pre)} prefill, {len(dec)} decode rows")


def run_kvcat(r: Runner) -> None:
    """torch.cat of a [b, h, L, d] cache with one new token, contiguous and cropped caches."""
    import torch

    log = CsvLog(r.out / "kv_cat.csv", KV_CAT)
    h, d = KVCAT_HEADS
    jobs = [(lay, b, c) for lay in KVCAT_LAYOUTS for b in KVCAT_BATCH for c in KVCAT_CONTEXT]
    for i, (layout, b, c) in enumerate(jobs):
        key = {"op": "cat", "layout": layout, "batch": b, "kv_heads": h, "head_dim": d, "context": c}
        if log.has(key):
            continue
        if r.late("kv_cat", len(jobs) - i):
            return

        def make(layout: str = layout, b: int = b, c: int = c) -> tuple[Any, Any]:
            extra = 1 if layout == "cropped" else 0     # crop(-1) of a cache one token longer
            big = torch.randn(b, h, c + extra, d, device="cuda", dtype=torch.bfloat16)
            return big[:, :, :c, :], torch.randn(b, h, 1, d, device="cuda", dtype=torch.bfloat16)

        def call(s: Any) -> Any:
            return torch.cat([s[0], s[1]], dim=-2)

        cache, new = make()
        if not torch.equal(call((cache, new))[:, :, :c], cache) or (layout == "cropped") == cache.is_contiguous():
            raise RuntimeError(f"kv_cat {layout} check failed")
        nbytes = kvcat_bytes(b, h, d, c)
        meas = r.bench.run(make, call, nbytes, profile=True)
        log.append({**key, "dtype": "bf16", "bytes": nbytes, **meas.row()})
    r.log(f"kv_cat: {len(log)} rows")


def _fp8_variant(variant: str, b: int, hq: int, hkv: int, d: int, L: int) -> tuple[Any, Any]:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    f8 = torch.float8_e4m3fn
    backend = SDPBackend.FLASH_ATTENTION if variant.endswith("flash") else SDPBackend.CUDNN_ATTENTION

    def make() -> tuple[Any, Any, Any]:
        q = torch.randn(b, hq, 1, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(b, hkv, L, d, device="cuda", dtype=torch.bfloat16).to(f8)
        v = torch.randn(b, hkv, L, d, device="cuda", dtype=torch.bfloat16).to(f8)
        return (q.to(f8) if variant == "fp8_qkv_cudnn" else q), k, v

    def call(s: Any) -> Any:
        q, k, v = s
        if variant != "fp8_qkv_cudnn":
            k, v = k.to(torch.bfloat16), v.to(torch.bfloat16)
        with sdpa_kernel([backend]):
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    return make, call


def run_fp8(r: Runner) -> None:
    """fp8 K/V decode: straight into cuDNN, or upcast to bf16 first; records what failed too."""
    import torch

    log = CsvLog(r.out / "attention_fp8.csv", FP8)
    hq, hkv, d = HOPPER_HEADS[0]
    for variant in ("fp8_qkv_cudnn", "fp8kv_upcast_cudnn", "fp8kv_upcast_flash"):
        for i, (b, L) in enumerate(FP8_POINTS):
            key = {"op": "decode", "variant": variant, "batch": b, "q_heads": hq, "kv_heads": hkv,
                   "head_dim": d, "kv_len": L}
            if log.has(key):
                continue
            if r.late("fp8", len(FP8_POINTS) - i):
                return
            nbytes = b * d * (2 * hkv * L * 1.0 + 2 * hq * 2.0)
            make, call = _fp8_variant(variant, b, hq, hkv, d, L)
            try:
                q, k, v = make()
                out = call((q, k, v)).float()
                ref = torch.nn.functional.scaled_dot_product_attention(
                    q.float(), k.float(), v.float(), enable_gqa=True)
                err = float((out - ref).norm() / ref.norm())
                meas = r.bench.run(make, call, nbytes, profile=True)
            except (RuntimeError, TypeError, torch.cuda.OutOfMemoryError) as exc:
                log.append({**key, "bytes": nbytes, "status": "failed",
                            "error": str(exc).splitlines()[0][:200].replace(",", ";")})
                r.log(f"fp8 {variant} b={b} L={L}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                if variant == "fp8_qkv_cudnn":
                    break           # one failure says it; the other shapes would fail the same way
                continue
            log.append({**key, "bytes": nbytes, "status": "ran", "rel_err": err, "event_s": meas.event_s,
                        "kernel_s": meas.kernel_s, "kernels_per_call": meas.kernels_per_call})
    r.log(f"fp8: {len(log)} rows")


def device_meta() -> dict[str, Any]:
    import subprocess

    import torch

    p = torch.cuda.get_device_properties(0)
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit",
                          "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    try:
        import transformers
        tf = transformers.__version__
    except ImportError:
        tf = None
    return {"device_name": p.name, "sms": p.multi_processor_count, "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "transformers": tf,
            "python": sys.version.split()[0], "nvidia_smi": smi,
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


PARTS = {"cudnn": lambda r: run_attention(r, "cudnn"), "kvcat": run_kvcat,
         "flash": lambda r: run_attention(r, "flash"), "fp8": run_fp8}


def run_parts(argv: list[str] | None, doc: str | None, parts: dict[str, Any], tag: str, bench: bool = True) -> int:
    """The command line of a Hopper measurement script: OUT folder, --parts (comma-separated keys of
    ``parts``, each a function of the :class:`Runner`) and --deadline-s; writes the device's meta first."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--parts", default=",".join(parts))
    ap.add_argument("--deadline-s", type=float, default=480.0)
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    r = Runner(out, a.deadline_s, bench=bench)
    meta = {**device_meta(), "command": " ".join(sys.argv)}
    (out / f"meta-{tag}{time.strftime('%H%M%S')}.json").write_text(json.dumps(meta, indent=1))
    r.log(json.dumps(meta))
    for part in a.parts.split(","):
        try:
            parts[part](r)
        except Exception as exc:   # a broken part must not cost the others their device time
            r.log(f"part {part} failed: {type(exc).__name__}: {exc}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_parts(argv, __doc__, PARTS, "")


if __name__ == "__main__":
    raise SystemExit(main())
