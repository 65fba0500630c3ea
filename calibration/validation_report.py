"""Write docs/validation.md and the roofline charts from the committed measurements.

    python -m calibration.validation_report           # needs altair + vl-convert-python for the PNGs

Everything comes from ``calibration/data/``: kernel fits with held-back error (calibration/fit.py),
the whole-model check (calibration/whole_model_check.py), and the measured kernels on each GPU's
roofline. Re-run after a new calibration; the date and commands are written into the page.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.catalog.gpus import load_gpu

from .fit import fit
from .profiles import DECODE_FEATURE, measured_gpus
from .whole_model_check import compare, summary

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "calibration" / "data"
DOCS = ROOT / "docs"
KINDS = ("gemm_bf16", "gemm_fp8", "attention_prefill", "attention_decode", "memory")


def kernel_table() -> pd.DataFrame:
    rows = []
    for gpu in measured_gpus():
        rep = fit(DATA / gpu, gpu, decode_feature=DECODE_FEATURE)["report"]
        for k in KINDS:
            if k in rep:
                h = rep[k]["held_out"]
                rows.append({"gpu": gpu, "op": k, "points": rep[k]["points"], "held_out": h["n"],
                             "median_ape_pct": round(h["median_ape_pct"], 1), "p90_ape_pct": round(h["p90_ape_pct"], 1)})
    return pd.DataFrame(rows)


def _points(gpu: str) -> pd.DataFrame:
    frames = []
    for csv, label in (("gemm", None), ("attention_prefill", "attention prefill"),
                       ("attention_decode", "attention decode"), ("memory", "memory")):
        p = DATA / gpu / f"{csv}.csv"
        if not p.exists():
            continue
        d = pd.read_csv(p)
        t = d["kernel_s"].fillna(d["event_s"]) if "kernel_s" in d else d["event_s"]
        kind = ("gemm " + d["dtype"]) if label is None else label
        frames.append(pd.DataFrame({"kind": kind, "intensity": d["flops"].clip(lower=1) / d["bytes"],
                                    "tflops": d["flops"] / t / 1e12, "tbps": d["bytes"] / t / 1e12}))
    return pd.concat(frames)


def roofline_png(gpu: str, out: Path) -> bool:
    try:
        import altair as alt
        import vl_convert  # noqa: F401
    except ImportError:
        return False
    g = load_gpu(gpu)
    pts = _points(gpu)
    pts = pts[pts["tflops"] > 0]
    xs = np.geomspace(0.1, 2e4, 200)
    roofs = []
    for dtype in ("bf16", "fp8"):
        if g.has_dtype(dtype):
            roofs.append(pd.DataFrame({"intensity": xs, "tflops": np.minimum(g.peak_flops(dtype), xs * g.memory_bandwidth) / 1e12,
                                       "roof": f"datasheet {dtype} roof"}))
    roof = pd.concat(roofs)
    x = alt.X("intensity:Q", scale=alt.Scale(type="log"), title="arithmetic intensity (FLOP/byte)")
    y = alt.Y("tflops:Q", scale=alt.Scale(type="log"), title="achieved TFLOP/s")
    chart = (alt.Chart(roof).mark_line(color="black").encode(x=x, y=y, strokeDash="roof:N")
             + alt.Chart(pts).mark_circle(size=14, opacity=0.6).encode(x=x, y=y, color="kind:N")
             ).properties(width=560, height=360, title=f"{g.display_name}: measured kernels on the datasheet roofline")
    out.parent.mkdir(parents=True, exist_ok=True)
    chart.save(str(out), ppi=110)
    return True


def main() -> int:
    ktab = kernel_table()
    wm = pd.concat([compare(g) for g in measured_gpus() if (DATA / g / "whole_model.csv").exists()])
    wm_sum = summary(wm)
    (DOCS / "validation").mkdir(parents=True, exist_ok=True)
    wm.to_csv(DOCS / "validation" / "whole_model.csv", index=False)
    ktab.to_csv(DOCS / "validation" / "kernels.csv", index=False)
    charts = [g for g in measured_gpus() if roofline_png(g, DOCS / "img" / f"roofline-{g}.png")]
    metas = {g: json.loads((DATA / g / "meta.json").read_text()) for g in measured_gpus() if (DATA / g / "meta.json").exists()}
    today = dt.date.today().isoformat()
    fmt = lambda v: f"{v * 100:.1f}%"  # noqa: E731
    lines = [
        "# Validation: how close servesim's time model comes to real GPUs",
        "",
        f"Generated {today} by `python -m calibration.validation_report` from the measurements committed in",
        "`calibration/data/` (method and raw numbers: `docs/calibration.md`). Re-run it after a new calibration.",
        "",
        "Measured on: " + "; ".join(
            f"{g}: {m['device']['name']}, torch {m['versions'].get('torch')}, CUDA {m['versions'].get('cuda')}, "
            f"transformers {m['versions'].get('transformers')}, {m['started_utc']}" for g, m in metas.items()) + ".",
        "",
        "## Method",
        "",
        "- **Kernels.** Every measured shape gets an efficiency = ideal time / measured kernel time, ideal =",
        "  max(FLOPs / dense datasheet peak, bytes / datasheet bandwidth). Curves are fitted on three quarters of",
        "  the shapes and predict the held-back quarter (every 4th shape); the table gives the absolute",
        "  percentage error of predicted vs measured time on the held-back shapes. The curves shipped in",
        "  `hwprofiles/` are then fitted on all shapes (`servesim calibrate fit --write`; CI checks with `--check`).",
        "- **Whole-model steps.** Hugging Face transformers models built from catalog configs with random weights",
        "  (Llama-3.2-1B, Llama-3.1-8B, Qwen3-8B; Qwen3-30B-A3B on H200), eager, sdpa attention, DynamicCache,",
        "  prefill and one decode step over a grid of batch × length, profiled with the torch profiler. Predicted",
        "  with `servesim estimate --model ... --engine hf-eager`. Kernel time = summed CUDA kernel time; wall",
        "  time includes the framework's host overhead (the `hf-eager` profile's host figures are fitted from",
        "  these wall times, so wall errors are in-sample; kernel errors are out-of-sample except the eager",
        "  element-wise kernel duration and the cache concatenation rate, measured from one profiled decode",
        "  step per model).",
        "",
        "## Kernels: held-back error per operation",
        "",
        "| GPU | operation | shapes | held back | median error | p90 error |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {r.gpu} | {r.op} | {r.points} | {r.held_out} | {r.median_ape_pct}% | {r.p90_ape_pct}% |"
              for r in ktab.itertuples()]
    lines += ["", "Targets: median ≤ 5%, p90 ≤ 15% per operation.", "",
              "## Whole-model steps: predicted vs measured", "",
              "| GPU | phase | points | kernel time median error | p90 | wall time median error | p90 |",
              "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.gpu} | {r.phase} | {r.points} | {fmt(r.kernel_median_ape)} | {fmt(r.kernel_p90_ape)} | "
              f"{fmt(r.wall_median_ape)} | {fmt(r.wall_p90_ape)} |" for r in wm_sum.itertuples()]
    lines += ["", "Target: median ≤ 8% on both GPUs. Every point: `docs/validation/whole_model.csv`.", ""]
    if charts:
        lines += ["## Rooflines", ""]
        lines += [f"![roofline {g}](img/roofline-{g}.png)" for g in charts]
        lines += [""]
    lines += [
        "## Where the model is weak",
        "",
        "- **Prefill attention** misses the kernel target (median ≈ 12%, p90 ≈ 29%). At equal query and KV",
        "  lengths, FlashAttention's efficiency still grows several-fold with batch × heads (more tiles to fill",
        "  132 SMs): 15 TFLOP/s at one 128-token sequence, 69 at sixteen. The curve's two features (new tokens",
        "  per sequence, KV length) cannot express that; feature variants tried (total query rows × heads, FLOPs",
        "  per call) did not do better on held-back shapes. A tile-count model is the next step. In whole-model",
        "  steps attention is a small share below 2k tokens, which is why those errors stay small.",
        "- **Memory-bound kernels** (median 15–19%): one curve mixes a 1 µs copy floor with a 4 µs RMSNorm",
        "  floor. Element-wise work in real engines is fused into few kernels, so the effect on steps is small.",
        "- **GEMM p90** (11–14%) comes from mid-size M (64–512) where cuBLAS switches tile shapes and split-K.",
        "- **Wall time** of eager transformers varies by 20–35% between repeats on the measurement VMs (host",
        "  dispatch), so its error stays large; fused engines replaying CUDA graphs do not have this term.",
        "- **Power**: under sustained load both GPUs sat at the 700 W limit with SM clocks near 1.3–1.5 GHz; the",
        "  fit is to that sustained state, so isolated kernels on a cool GPU run faster than predicted.",
        "- **Not measured here**: 8-GPU collectives and tensor-parallel steps (4 GPUs measured, 8 extrapolated:",
        "  `docs/validation-multigpu.md`), AMD, TPU, Apple and CPU devices (documented default curves).",
        "",
        "## More validation",
        "",
        "- Tensor parallelism and collectives on 4 × H200: `docs/validation-multigpu.md`.",
        "- End-to-end against a real continuous-batching server (transformers on an H100), request by request:",
        "  `docs/validation-e2e.md`.",
        "",
    ]
    (DOCS / "validation.md").write_text("\n".join(lines))
    print((DOCS / "validation.md").read_text()[:200])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
