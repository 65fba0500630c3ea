"""Write docs/validation/time-model.md and the roofline charts from the committed measurements.

    python -m calibration.validation_report           # needs altair + vl-convert-python for the PNGs

Everything comes from ``calibration/data/``: kernel fits with held-back error (calibration/fit.py),
the whole-model check (calibration/whole_model_check.py), and the measured kernels on each GPU's
roofline. Re-run after a new calibration; the date and commands are written into the page. The
page's closing section (from ``## More validation`` on, which summarises the end-to-end and
multi-GPU pages) is maintained by hand and kept as it is.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.catalog.gpus import load_gpu

from simulator.calibration.fit import fit
from simulator.calibration.profiles import DECODE_FEATURE, measured_gpus
from .whole_model_check import compare, summary

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "calibration" / "data"
DOCS = ROOT / "docs"
KINDS = ("gemm_bf16", "gemm_fp8", "attention_prefill", "attention_decode", "memory", "memory_norm",
         "memory_pointwise")
#: What each kind's row covers (the kernels measured and what the step model prices with it).
KIND_NOTES = {"gemm_bf16": "cuBLAS matmul", "gemm_fp8": "cuBLAS scaled_mm", "attention_prefill": "FlashAttention-2, tile model",
              "attention_decode": "FlashAttention-2, tile model", "memory": "copies", "memory_norm": "RMSNorm",
              "memory_pointwise": "SiLU x mul, strided"}
HAND_KEPT = "## More validation"
DEFAULT_TAIL = [
    HAND_KEPT,
    "",
    "- Tensor parallelism and collectives on 4 × H200: `docs/validation/multi-gpu.md`.",
    "- End-to-end against a real continuous-batching server (transformers on an H100), request by request:",
    "  `docs/validation/end-to-end.md`.",
    "",
]


def hand_kept_tail(path: Path) -> list[str]:
    """The page's hand-maintained closing section (from ``## More validation``), or the default."""
    if path.exists():
        lines = path.read_text().splitlines()
        for i, ln in enumerate(lines):
            if ln.strip() == HAND_KEPT:
                return lines[i:] + [""]
    return list(DEFAULT_TAIL)


def kernel_table() -> pd.DataFrame:
    rows = []
    for gpu in measured_gpus():
        rep = fit(DATA / gpu, gpu, decode_feature=DECODE_FEATURE)["report"]
        for k in KINDS:
            if k in rep:
                h = rep[k]["held_out"]
                rows.append({"gpu": gpu, "op": k, "kernels": KIND_NOTES.get(k, ""), "points": rep[k]["points"],
                             "held_out": h["n"],
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


def target_lines(ktab: pd.DataFrame, wm_sum: pd.DataFrame) -> list[str]:
    """Which targets the tables meet and which they miss, by how much."""
    miss = [f"{r.gpu} {r.op} ({r.median_ape_pct}% / {r.p90_ape_pct}%)" for r in ktab.itertuples()
            if r.median_ape_pct > 5.0 or r.p90_ape_pct > 15.0]
    out = ["Targets: median ≤ 5%, p90 ≤ 15% per operation and GPU. "
           + ("Met by every row." if not miss else "Missed by: " + "; ".join(miss) + ".")]
    wmiss = [f"{r.gpu} {r.phase} ({r.kernel_median_ape * 100:.1f}%)" for r in wm_sum.itertuples()
             if r.kernel_median_ape > 0.08]
    out += ["", "Target: kernel-time median ≤ 8% on both GPUs: "
            + ("met by every row." if not wmiss else "missed by " + ", ".join(wmiss) + ".")
            + " Every point: `docs/validation/whole_model.csv`."]
    return out


#: The page's method section (fixed text).
METHOD = [
    "## Method",
    "",
    "- **Kernels.** Every measured shape is predicted by the function the simulator calls for it, with",
    "  parameters fitted on three quarters of the shapes; the table gives the absolute percentage error of",
    "  predicted vs measured kernel time on the held-back quarter (every 4th shape). GEMMs and memory-bound",
    "  kernels: efficiency curves (ideal time = max(FLOPs / dense datasheet peak, bytes / datasheet",
    "  bandwidth), divided by a curve over log2 shape features). Prefill attention: FlashAttention-2's",
    "  tiles dealt to the SMs (`simulator/perf/tiles.py`, 8 fitted numbers per GPU). Decode attention:",
    "  FlashAttention-2's CTAs, one per (sequence, KV head), split over the keys by its split-KV heuristic,",
    "  streaming the cache (`tiles.decode_tile_time`, 9 fitted numbers per GPU). Memory-bound kernels in",
    "  three families, each with its own curve: copies (`memory`), RMSNorm (`memory_norm`) and element-wise",
    "  kernels on strided operands (`memory_pointwise`, torch's two-kernel SiLU x mul at its true bytes).",
    "  The models shipped in `hwprofiles/` are then fitted on all shapes (`servesim calibrate fit --write`;",
    "  CI checks with `--check`).",
    "- **Whole-model steps.** Hugging Face transformers models built from catalog configs with random weights",
    "  (Llama-3.2-1B, Llama-3.1-8B, Qwen3-8B; Qwen3-30B-A3B on H200), eager, sdpa attention, DynamicCache,",
    "  prefill and one decode step over a grid of batch × length, profiled with the torch profiler. Predicted",
    "  with `servesim estimate --model ... --engine hf-eager`. Kernel time = summed CUDA kernel time; wall",
    "  time includes the framework's host overhead (the `hf-eager` profile's host figures are fitted from",
    "  these wall times, so wall errors are in-sample; kernel errors are out-of-sample except the eager",
    "  element-wise kernel duration and the cache concatenation rate, measured from one profiled decode",
    "  step per model).",
    "",
]
#: The page's "where the model is weak" section (fixed text).
WEAK = [
    "## Where the model is weak",
    "",
    "- **Memory-bound kernels, few shapes**: each family has 16 measured sizes, so 4 held back per GPU; the",
    "  p90 of 4 errors is nearly the largest of them. The largest errors sit next to steps where torch switches",
    "  kernel configuration: RMSNorm's time jumps 49% (H100) and 67% (H200) from 2.1 to 4.2 MB, SiLU x mul's",
    "  36% from 0.8 to 1.6 MB (H100); one octave between measured sizes cannot place such a step.",
    "- **Decode attention** is measured at head dim 128 with query groups of 1-8 heads; the tile model",
    "  takes FlashAttention-2's 128-key blocks and one CTA per KV head (groups up to 64). GPUs that take",
    "  curves by transfer keep the decode curve (the transfer rule does not carry the decode tile model), which",
    "  on H200 missed by 3.1% / 22.2% (few KV heads, where the split-KV choice changes between batches).",
    "- **Prefill attention in the whole-model runs** is cuDNN's SDPA kernel (transformers' default on these",
    "  GPUs), faster than the FlashAttention-2 kernel the micro-benchmarks force and the tile model describes:",
    "  4 sequences × 512 tokens, 32/8 heads on H100, 35 µs per layer with cuDNN in the profiled Llama-3.1-8B",
    "  step vs 61 µs with FlashAttention-2 in `attention_prefill.csv`. Attention is 2–3% of those steps, so",
    "  the effect on whole-step time is small.",
    "- **Eager element-wise kernels** of transformers (fp32-upcast norms, RoPE on transposed q / k) run",
    "  torch's generic element-wise path: priced on the `memory_pointwise` curve, with the vectorized ones",
    "  (residual adds, SiLU, multiply) on the copy curve. In the profiled 4 × 512 prefill steps the",
    "  memory-bound kernels are predicted within +4% (Llama-3.1-8B) to +21% (Llama-3.2-1B).",
    "- **GEMM p90** (11–14%) comes from mid-size M (64–512) where cuBLAS switches tile shapes and split-K.",
    "- **Wall time** of eager transformers varies by 20–35% between repeats on the measurement VMs (host",
    "  dispatch), so its error stays large; fused engines replaying CUDA graphs do not have this term.",
    "- **Power**: under sustained load both GPUs sat at the 700 W limit with SM clocks near 1.3–1.5 GHz; the",
    "  fit is to that sustained state, so isolated kernels on a cool GPU run faster than predicted.",
    "- **Not measured here**: 8-GPU collectives and tensor-parallel steps (4 GPUs measured, 8 extrapolated:",
    "  `docs/validation/multi-gpu.md`), AMD, TPU, Apple and CPU devices (documented default curves).",
    "",
]


def header(metas: dict[str, dict], today: str) -> list[str]:
    """The page's title, provenance and measured-on lines."""
    return [
        "# Validation: how close servesim's time model comes to real GPUs",
        "",
        f"Generated {today} by `python -m calibration.validation_report` from the measurements committed in",
        "`calibration/data/` (method and raw numbers: `docs/guide/calibration.md`). Re-run it after a new calibration.",
        "",
        "Measured on: " + "; ".join(
            f"{g}: {m['device']['name']}, torch {m['versions'].get('torch')}, CUDA {m['versions'].get('cuda')}, "
            f"transformers {m['versions'].get('transformers')}, {m['started_utc']}" for g, m in metas.items()) + ".",
        "",
    ]


def result_lines(ktab: pd.DataFrame, wm_sum: pd.DataFrame, charts: list[str]) -> list[str]:
    """The kernel and whole-model tables with their targets, and the roofline charts."""
    fmt = lambda v: f"{v * 100:.1f}%"  # noqa: E731
    lines = ["## Kernels: held-back error per operation", "",
             "| GPU | operation | kernels | shapes | held back | median error | p90 error |",
             "|---|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r.gpu} | {r.op} | {r.kernels} | {r.points} | {r.held_out} | {r.median_ape_pct}% | {r.p90_ape_pct}% |"
              for r in ktab.itertuples()]
    lines += [""] + target_lines(ktab, wm_sum)[:1] + ["",
              "## Whole-model steps: predicted vs measured", "",
              "| GPU | phase | points | kernel time median error | p90 | wall time median error | p90 |",
              "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.gpu} | {r.phase} | {r.points} | {fmt(r.kernel_median_ape)} | {fmt(r.kernel_p90_ape)} | "
              f"{fmt(r.wall_median_ape)} | {fmt(r.wall_p90_ape)} |" for r in wm_sum.itertuples()]
    lines += target_lines(ktab, wm_sum)[1:] + [""]
    if charts:
        lines += ["## Rooflines", ""]
        lines += [f"![roofline {g}](../img/roofline-{g}.png)" for g in charts]
        lines += [""]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration.validation_report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args(argv)
    ktab = kernel_table()
    wm = pd.concat([compare(g) for g in measured_gpus() if (DATA / g / "whole_model.csv").exists()])
    wm_sum = summary(wm)
    (DOCS / "validation").mkdir(parents=True, exist_ok=True)
    wm.to_csv(DOCS / "validation" / "whole_model.csv", index=False)
    ktab.to_csv(DOCS / "validation" / "kernels.csv", index=False)
    charts = [g for g in measured_gpus() if roofline_png(g, DOCS / "img" / f"roofline-{g}.png")]
    metas = {g: json.loads((DATA / g / "meta.json").read_text()) for g in measured_gpus() if (DATA / g / "meta.json").exists()}
    page = DOCS / "validation" / "time-model.md"
    lines = header(metas, dt.date.today().isoformat()) + METHOD + result_lines(ktab, wm_sum, charts) + WEAK
    lines += hand_kept_tail(page)
    page.write_text("\n".join(lines).rstrip("\n") + "\n")
    print(page.read_text()[:200])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
