"""The ``hf-paged`` engine profile's host and kernel figures, from the per-step profile alone.

Reads ``profile_steps.csv`` (plain and profiled runs of decode batches, see
:mod:`calibration.e2e.stepprofile`) and ``profile_kernels.csv``; the end-to-end latencies are not
used. Decode steps are those where all B sequences decode (no prompt chunk). Figures:

- host time of the forward call per kernel: median plain-run host forward time over the kernels
  the profiler saw per step (``per_launched_kernel_s``) and over the kernels servesim's step model
  counts for the same step (``cpu_launch_per_kernel_s``; the model multiplies its own count);
- ``cpu_overhead_per_step_s`` and ``cpu_overhead_per_seq_s``: intercept and slope over B of the
  rest of the step's wall time (wall - host forward: scheduling, input preparation, sampling,
  the wait for the GPU, the update), least squares over the host-bound batches;
- ``kv_copy_Bps``: the bytes servesim's concatenated-cache term counts per context token
  (K and V of every layer, read and written) over the measured growth of non-GEMM kernel time per
  context token (the packed-batch KV gather, the GQA head expansion and the masked attention);
- ``elementwise_kernel_s``: count-weighted median duration of the small element-wise kernels at B = 1.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _num(r: dict[str, str], k: str) -> float:
    v = r.get(k, "")
    return float(v) if v not in ("", None) else float("nan")


def _median(values: list[float]) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else float("nan")


def decode_medians(steps: list[dict[str, str]]) -> dict[tuple[str, int], dict[str, float]]:
    """Per (run, batch): medians over the steps decoding all B sequences."""
    out: dict[tuple[str, int], dict[str, float]] = {}
    keys = ("wall_s", "fwd_host_s", "decode_ctx", "kernels", "kernel_s", "gemm_s")
    groups: dict[tuple[str, int], list[dict[str, str]]] = {}
    for r in steps:
        b = int(float(r["batch"]))
        if int(float(r["decode_seqs"])) == b and int(float(r["prefill_seqs"])) == 0:
            groups.setdefault((r["run"], b), []).append(r)
    for key, g in groups.items():
        out[key] = {k: _median([_num(r, k) for r in g]) for k in keys}
        out[key]["steps"] = float(len(g))
    return out


def fit(steps_csv: Path, kernels_csv: Path, model_kernels: int, kv_bytes_per_token: float,
        attention_s_per_token: float = 0.0) -> dict[str, float]:
    """The profile figures (seconds, bytes/s). ``model_kernels``: kernels servesim counts for one
    decode step; ``kv_bytes_per_token``: bytes its concatenated-cache term moves per context token;
    ``attention_s_per_token``: its own decode-attention seconds per context token (subtracted)."""
    med = decode_medians(_rows(steps_csv))
    batches = sorted(b for (run, b) in med if run == "plain")
    plain = [med[("plain", b)] for b in batches]
    prof = {b: med[("profiled", b)] for (run, b) in med if run == "profiled"}
    launched = [prof[b]["kernels"] for b in batches if b in prof]
    host = np.array([p["fwd_host_s"] for p in plain])
    rest = np.array([p["wall_s"] - p["fwd_host_s"] for p in plain])
    gpu = np.array([prof[b]["kernel_s"] if b in prof else np.nan for b in batches])
    bound = [i for i, b in enumerate(batches) if not gpu[i] > 0.5 * host[i]]   # host-bound batches
    bb = np.array(batches, dtype=float)[bound]
    slope, icpt = np.polyfit(bb, rest[bound], 1) if len(bound) >= 2 else (0.0, float(np.median(rest)))
    ctx = np.array([prof[b]["decode_ctx"] for b in batches if b in prof])
    growth = np.array([prof[b]["kernel_s"] - prof[b]["gemm_s"] for b in batches if b in prof])
    per_token = float(np.polyfit(ctx, growth, 1)[0]) - attention_s_per_token if len(ctx) >= 2 else float("nan")
    return {
        "host_forward_s": float(np.median(host)),
        "kernels_launched": float(np.median(launched)) if launched else float("nan"),
        "per_launched_kernel_s": float(np.median(host) / np.median(launched)) if launched else float("nan"),
        "cpu_launch_per_kernel_s": float(np.median(host) / model_kernels),
        "cpu_overhead_per_step_s": max(0.0, float(icpt)),
        "cpu_overhead_per_seq_s": max(0.0, float(slope)),
        "kv_copy_Bps": kv_bytes_per_token / per_token if per_token > 0 else float("nan"),
        "context_s_per_token": per_token,
        "elementwise_kernel_s": elementwise_median(_rows(kernels_csv)),
        "host_bound_batches": float(len(bound)),
    }


def elementwise_median(kernels: list[dict[str, str]], batch: int = 1, max_s: float = 20e-6) -> float:
    """Count-weighted median duration of element-wise kernels shorter than ``max_s`` at ``batch``."""
    durs, counts = [], []
    for r in kernels:
        if int(float(r["batch"])) != batch or r["kind"] not in ("other", "copy"):
            continue
        if "elementwise" not in r["name"]:
            continue
        c = int(float(r["count"]))
        d = float(r["total_s"]) / max(c, 1)
        if d < max_s:
            durs.append(d)
            counts.append(c)
    if not durs:
        return float("nan")
    order = np.argsort(durs)
    cum = np.cumsum(np.array(counts)[order])
    return float(np.array(durs)[order][np.searchsorted(cum, cum[-1] / 2)])


def model_terms(engine: str = "hf-paged", model: str = "llama-3.1-8b", gpu: str = "h100-sxm",
                batches: tuple[int, int] = (1, 32), context: int = 1048) -> tuple[int, float, float]:
    """servesim's kernels per decode step, concatenated-cache bytes per context token (K and V of
    every layer, read and written) and decode-attention seconds per context token (slope between
    the two batch sizes) for ``engine``: none of these depend on the figures being fitted."""
    from simulator.catalog.engines import load_engine
    from simulator.catalog.gpus import load_gpu
    from simulator.catalog.models import load_model
    from simulator.perf.step import BatchShape, StepModel

    arch = load_model(model)
    sm = StepModel(arch, load_gpu(gpu), load_engine(engine))
    lo, hi = (sm.time(BatchShape.decode(b, context)) for b in batches)
    kv_bytes = 2.0 * arch.kv_elements_per_token_per_layer() * 2 * arch.num_layers   # bf16 K and V, read + write
    att = (hi.breakdown.get("attention_decode", 0.0) - lo.breakdown.get("attention_decode", 0.0)) / (
        (batches[1] - batches[0]) * (context + 1))
    return lo.kernels, kv_bytes, att


def main(argv: list[str] | None = None) -> int:
    """Print the figures for one measured folder as the engine profile's YAML keys."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m calibration.e2e.profile_fit", description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path, help="folder written by calibration.e2e.harness")
    a = p.parse_args(argv)
    kernels, kv_bytes, att = model_terms()
    f = fit(a.data / "profile_steps.csv", a.data / "profile_kernels.csv", kernels, kv_bytes, att)
    print(f"# servesim counts {kernels} kernels per decode step; the profiler saw {f['kernels_launched']:.0f}")
    print(f"# host forward per step {f['host_forward_s'] * 1e3:.1f} ms = {f['per_launched_kernel_s'] * 1e6:.1f} us "
          f"per launched kernel")
    for k in ("cpu_overhead_per_step_s", "cpu_overhead_per_seq_s", "cpu_launch_per_kernel_s", "kv_copy_Bps",
              "elementwise_kernel_s"):
        print(f"{k}: {f[k]:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
