"""Measured tensor-parallel steps (tp_step.csv) against servesim's StepModel (no torch).

Measured kernel totals are recomputed from tp_step_kernels.csv (profiled per segment, per call) and
scaled to the model's layers like the step time: outside + layers x layers_model / layers_measured.
Kernels are grouped as GEMM, attention, NCCL (communication) and other (norms, RoPE, SiLU x up,
residual adds, copies, embedding, sampling). Predictions use the fused engine profile (fused
kernels, CUDA graphs on decode) with its CPU costs left out, since the measured steps run no
scheduler: predicted GPU step = kernel sum + kernels x the profile's graph launch gap.
``python -m calibration.tp_compare DIR`` prints the tables of docs/validation/multi-gpu.md.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from simulator.catalog.engines import load_engine
from simulator.catalog.gpu import CollectiveFit, GPUProfile
from simulator.catalog.gpus import load_gpu
from simulator.catalog.models import load_model
from simulator.perf.step import BatchShape, StepModel

from simulator.calibration.io import as_float, read_rows

CLASSES = ("gemm", "attention", "comm", "other")
#: servesim breakdown keys per kernel class.
PRED_CLASSES = {"gemm": ("qkv_proj", "o_proj", "mlp", "lm_head"),
                "attention": ("attention_decode", "attention_prefill"),
                "comm": ("communication",), "other": ("elementwise", "kv_cache", "embedding", "sampling")}
Key = tuple[int, str, int, int, str, int]          # tp, phase, batch, seq_or_context, mode, layers_measured


def kernel_class(name: str) -> str | None:
    """GEMM, attention, comm or other; None for profiler ranges that are not kernels."""
    low = name.lower()
    if name.startswith(("gpu_user_annotation", "nccl:")):
        return None
    if "nccl" in low:
        return "comm"
    if low.startswith(("nvjet", "cutlass", "sm90_xmma")) or "gemm" in low or "splitkreduce" in low:
        return "gemm"
    if "sdpa" in low or "flash" in low or "fmha" in low or "cudnn" in low:
        return "attention"
    return "other"


def kernel_totals(rows: list[dict[str, str]], layers_model: int = 80) -> dict[Key, dict[str, float]]:
    """Per point and mode: seconds per class and kernel count per step, scaled to ``layers_model`` layers;
    'allreduce_in_layers_s' is the mean NCCL all-reduce kernel inside the layers."""
    seg: dict[Key, dict[str, dict[str, float]]] = {}
    for r in rows:
        cls = kernel_class(r["kernel"])
        if cls is None:
            continue
        key = (int(r["tp"]), r["phase"], int(r["batch"]), int(r["seq_or_context"]), r["mode"],
               int(r["layers_measured"]))
        d = seg.setdefault(key, {}).setdefault(r["segment"], {})
        d[cls] = d.get(cls, 0.0) + as_float(r["total_s"])
        d["kernels"] = d.get("kernels", 0.0) + as_float(r["count"])
        if "AllReduce" in r["kernel"]:
            d["ar_s"] = d.get("ar_s", 0.0) + as_float(r["total_s"])
            d["ar_n"] = d.get("ar_n", 0.0) + as_float(r["count"])
    out: dict[Key, dict[str, float]] = {}
    for key, by in seg.items():
        lay, outside = by.get("layers", {}), by.get("outside", {})
        f = layers_model / key[5]
        out[key] = {c: outside.get(c, 0.0) + lay.get(c, 0.0) * f for c in (*CLASSES, "kernels")}
        out[key]["allreduce_in_layers_s"] = lay["ar_s"] / lay["ar_n"] if lay.get("ar_n") else float("nan")
    return out


def with_fits(gpu: GPUProfile, fits_json: Path) -> GPUProfile:
    """``gpu`` with the collective fits of a collective_fits.json added (they win over the profile's)."""
    data = json.loads(Path(fits_json).read_text())
    eff = gpu.efficiency
    upd: dict[str, Any] = {}
    for table in ("collectives", "collectives_graph"):
        merged = {c: dict(v) for c, v in getattr(eff, table).items()}
        for coll, by_g in data.get(table, {}).items():
            merged.setdefault(coll, {}).update({int(g): CollectiveFit(**f) for g, f in by_g.items()})
        upd[table] = merged
    return gpu.model_copy(update={"efficiency": eff.model_copy(update=upd)})


def predict(gpu: GPUProfile, tp: int, phase: str, batch: int, soc: int, model: str = "llama-3.1-70b",
            engine: str = "fused") -> dict[str, float]:
    """servesim's step on ``gpu``: kernel sum, GPU step (kernel sum + graph gaps), per-class seconds."""
    sm = StepModel(load_model(model), gpu, load_engine(engine), tp=tp)
    shape = BatchShape.prefill(batch, soc) if phase == "prefill" else BatchShape.decode(batch, soc)
    st = sm.price(shape, exact=True, detail=True)
    out = {"kernel_sum_s": st.gpu_s, "gpu_step_s": st.gpu_s + st.kernels * gpu.efficiency.graph_launch_overhead_s,
           "kernels": float(st.kernels)}
    for cls, keys in PRED_CLASSES.items():
        out[cls] = sum(st.breakdown.get(k, 0.0) for k in keys)
    return out


def comparison(data_dir: Path, fits_json: Path | None = None, gpu_name: str = "h200-sxm") -> list[dict[str, Any]]:
    """One dict per measured row (80-layer model points): measured and predicted figures (seconds)."""
    gpu = load_gpu(gpu_name)
    fitted = with_fits(gpu, fits_json) if fits_json is not None else None
    tot = kernel_totals(read_rows(data_dir / "tp_step_kernels.csv"))
    out = []
    for r in read_rows(data_dir / "tp_step.csv"):
        key = (int(r["tp"]), r["phase"], int(r["batch"]), int(r["seq_or_context"]), r["mode"],
               int(r["layers_measured"]))
        meas = tot.get(key, {})
        row: dict[str, Any] = {"tp": key[0], "phase": key[1], "batch": key[2], "n": key[3], "mode": key[4],
                               "layers": key[5], "step_s": as_float(r["step_s"]), "p10_s": as_float(r["step_p10_s"]),
                               "p90_s": as_float(r["step_p90_s"]), **{f"meas_{c}": meas.get(c, float("nan"))
                                                                     for c in (*CLASSES, "kernels")},
                               "meas_ar_s": meas.get("allreduce_in_layers_s", float("nan"))}
        row["pred"] = predict(gpu, key[0], key[1], key[2], key[3])
        if fitted is not None:
            row["pred_fit"] = predict(fitted, key[0], key[1], key[2], key[3])
        out.append(row)
    return out


def _pct(pred: float, meas: float) -> str:
    return f"{(pred - meas) / meas * 100:+.0f}%" if meas == meas and meas > 0 else "n/a"


def step_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: measured step against the predicted GPU step (profile as is, and with the x4 fits),
    and the measured kernel sum against the predicted one (milliseconds)."""
    head = ("| TP | phase | batch x seq/ctx | mode | layers built | measured step (p10-p90) | predicted, profile | "
            "error | predicted, x4 fits | error | measured kernel sum | predicted kernel sum | error |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        ksum = sum(r[f"meas_{c}"] for c in CLASSES)
        p, pf = r["pred"], r.get("pred_fit", r["pred"])
        lines.append(f"| {r['tp']} | {r['phase']} | {r['batch']}x{r['n']} | {r['mode']} | {r['layers']} | "
                     f"{r['step_s'] * 1e3:.1f} ({r['p10_s'] * 1e3:.1f}-{r['p90_s'] * 1e3:.1f}) | "
                     f"{p['gpu_step_s'] * 1e3:.1f} | {_pct(p['gpu_step_s'], r['step_s'])} | "
                     f"{pf['gpu_step_s'] * 1e3:.1f} | {_pct(pf['gpu_step_s'], r['step_s'])} | {ksum * 1e3:.1f} | "
                     f"{pf['kernel_sum_s'] * 1e3:.1f} | {_pct(pf['kernel_sum_s'], ksum)} |")
    return head + "\n".join(lines) + "\n"


def class_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: measured vs predicted milliseconds per kernel class, and kernels per step."""
    head = ("| TP | phase | batch x seq/ctx | mode | GEMM meas / pred | attention meas / pred | "
            "other meas / pred | NCCL meas / pred (profile fits) / pred (x4 fits) | "
            "all-reduce in layers, meas (us) | kernels meas / pred |\n|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        p, pf = r["pred"], r.get("pred_fit", r["pred"])
        cells = [f"{r[f'meas_{c}'] * 1e3:.2f} / {pf[c] * 1e3:.2f}" for c in ("gemm", "attention", "other")]
        comm = f"{r['meas_comm'] * 1e3:.2f} / {p['comm'] * 1e3:.2f} / {pf['comm'] * 1e3:.2f}"
        lines.append(f"| {r['tp']} | {r['phase']} | {r['batch']}x{r['n']} | {r['mode']} | {' | '.join(cells)} | "
                     f"{comm} | {r['meas_ar_s'] * 1e6:.1f} | {r['meas_kernels']:.0f} / {pf['kernels']:.0f} |")
    return head + "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Print the comparison tables for the folder argv[0] (collective_fits.json there, if present)."""
    data = Path(argv[0]) if argv else Path(__file__).resolve().parent / "data" / "h200-sxm-x4"
    fits = data / "collective_fits.json"
    rows = comparison(data, fits if fits.exists() else None)
    print(step_table(rows))
    print(class_table(rows))
    if fits.exists():
        from .collective_fits import fits_table, size_table

        doc = json.loads(fits.read_text())
        coll = read_rows(data / "collectives.csv")
        print(fits_table(doc))
        print(size_table(coll, doc, "all-reduce", 4))
        print(tp8_table(fits))
    return 0


def tp8_table(fits_json: Path) -> str:
    """Markdown: predicted decode steps at TP 8 with the extrapolated 8-GPU fits (not measured)."""
    gpu = with_fits(load_gpu("h200-sxm"), fits_json)
    lines = ["| batch x context | predicted GPU step TP 4 (ms) | predicted GPU step TP 8 (ms), extrapolated | "
             "communication TP 8 (ms), extrapolated |", "|---|---|---|---|"]
    for b, c in ((1, 1024), (32, 1024), (128, 2048)):
        p4, p8 = predict(gpu, 4, "decode", b, c), predict(gpu, 8, "decode", b, c)
        lines.append(f"| {b}x{c} | {p4['gpu_step_s'] * 1e3:.1f} | {p8['gpu_step_s'] * 1e3:.1f} | "
                     f"{p8['comm'] * 1e3:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
