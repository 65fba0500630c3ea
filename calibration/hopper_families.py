"""Per-layer kernel time of the Hopper whole-model decode rows, by kernel family, against the time model.

    python -m calibration.hopper_families calibration/data/h100-hopper [--gpu h100-sxm] [--engine hf-eager]

``hopper_model_kernels.csv`` holds the profiled kernels of one decode point per model at two layer
counts; the difference over the layers added is one decoder layer's kernels (embedding, LM head and
sampling cancel). Each kernel name is put in one family by the patterns of :data:`FAMILIES` (first
match wins). The time model is priced the same way, at the same two layer counts, and its
operation kinds are mapped to the same families (:data:`MODEL_FAMILY`), so that the two columns
compare one layer's work with nothing fitted.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from simulator.catalog.engines import load_engine
from simulator.catalog.gpus import load_gpu
from simulator.catalog.models import load_model
from simulator.errors import InputError
from simulator.perf.step import BatchShape, StepModel

#: (family, regular expression on the kernel name), first match wins.
FAMILIES: tuple[tuple[str, str], ...] = (
    ("grouped_gemm", r"GroupProblemShape|prepare_grouped_gemm_data"),
    ("gemm", r"nvjet|sgemm|gemv|splitKreduce|cutlass.*gemm|ampere_.*gemm|sm90_xmma"),
    ("attention", r"sdpa|flash|fmha|lean_reduction"),
    ("kv_cat", r"CatArrayBatchedCopy"),
    ("router_topk_softmax", r"topk|TopK|softmax|SortKV|radixSort|bitonicSort"),
    ("index_gather_scatter", r"index|gather|Histogram|DeviceScan|masked_fill|arange|div_floor|clamp|compare_scalar"
                             r"|FillFunctor|Memset"),
    ("copy_cast", r"direct_copy|bfloat16_copy|Memcpy"),
    ("norm", r"MeanOps|rsqrt|pow_tensor_scalar|CUDAFunctorOnSelf_add<float>"),
    ("elementwise", r"."),
)
#: The time model's operation kinds, by the family their kernels fall in.
MODEL_FAMILY = {"qkv_proj": "gemm", "o_proj": "gemm", "mlp": "gemm", "router": "gemm", "lm_head": "gemm",
                "moe": "grouped_gemm", "attention_decode": "attention", "kv_cache": "kv_cat",
                "elementwise": "elementwise+norm+copy_cast", "embedding": "index_gather_scatter",
                "sampling": "elementwise", "moe_routing": "router_topk_softmax+index_gather_scatter"}
#: Families compared as one, as the time model prices them together (the routing path of transformers'
#: grouped experts: simulator/perf/moe_routing.py; casts, multiply and sum of it go to elementwise).
MERGED = {"elementwise+norm+copy_cast": ("elementwise", "norm", "copy_cast"),
          "router_topk_softmax+index_gather_scatter": ("router_topk_softmax", "index_gather_scatter")}


def family(kernel: str) -> str:
    """The family of one profiled kernel name."""
    for fam, pat in FAMILIES:
        if re.search(pat, kernel):
            return fam
    return "elementwise"


def measured(kernels: pd.DataFrame) -> pd.DataFrame:
    """Seconds and kernels per decoder layer by family, per model (rows of two layer counts)."""
    out = []
    for (model, batch, context), g in kernels.groupby(["model", "batch", "context"], sort=False):
        layers = sorted(g["layers"].unique())
        if len(layers) < 2:
            continue
        lo, hi = layers[0], layers[-1]
        g = g.assign(family=g["kernel"].map(family))
        by = g.groupby(["family", "layers"])[["total_s", "count"]].sum().unstack("layers", fill_value=0)
        for fam, row in by.iterrows():
            out.append({"model": model, "batch": batch, "context": context, "family": fam,
                        "measured_s": (row[("total_s", hi)] - row[("total_s", lo)]) / (hi - lo),
                        "measured_kernels": (row[("count", hi)] - row[("count", lo)]) / (hi - lo),
                        "layers": f"{lo}/{hi}"})
    return pd.DataFrame(out)


def predicted(model: str, layers: str, batch: int, context: int, gpu: str, engine_name: str) -> pd.DataFrame:
    """The time model's seconds per decoder layer by family (difference of two depths)."""
    lo, hi = (int(x) for x in layers.split("/"))
    m, g, e = load_model(model), load_gpu(gpu), load_engine(engine_name)
    st = {n: StepModel(m.model_copy(update={"num_layers": n}), g, e).price(
        BatchShape.decode(batch, context, m.sliding_window), exact=True, detail=True) for n in (lo, hi)}
    rows: dict[str, float] = {}
    for kind in set(st[hi].breakdown) | set(st[lo].breakdown):
        d = (st[hi].breakdown.get(kind, 0.0) - st[lo].breakdown.get(kind, 0.0)) / (hi - lo)
        fam = MODEL_FAMILY.get(kind, kind)
        rows[fam] = rows.get(fam, 0.0) + d
    kern = (st[hi].kernels - st[lo].kernels) / (hi - lo)
    return pd.DataFrame([{"model": model, "family": f, "predicted_s": s} for f, s in rows.items()]
                        + [{"model": model, "family": "kernels", "predicted_s": float(kern)}])


def compare(data: Path, gpu: str, engine: str) -> pd.DataFrame:
    path = data / "hopper_model_kernels.csv"
    if not path.is_file():
        raise InputError("data_dir", str(data), "must hold hopper_model_kernels.csv from calibration.hopper_models")
    meas = measured(pd.read_csv(path))
    out = []
    for (model, batch, context, layers), g in meas.groupby(["model", "batch", "context", "layers"], sort=False):
        combos = []
        for name, fams in MERGED.items():
            combo = g[g["family"].isin(fams)][["measured_s", "measured_kernels"]].sum()
            combos.append({"model": model, "family": name, "measured_s": combo["measured_s"],
                           "measured_kernels": combo["measured_kernels"]})
        g = pd.concat([g, pd.DataFrame(combos)])
        g = pd.concat([g, pd.DataFrame([{"model": model, "family": "kernels",
                                         "measured_s": g[~g["family"].str.contains(r"\+")]["measured_kernels"].sum()}])])
        pred = predicted(str(model), str(layers), int(batch), int(context), gpu, engine)
        j = g.merge(pred, on=["model", "family"], how="outer")
        j["batch"], j["context"] = batch, context
        out.append(j)
    return pd.concat(out, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("--gpu", default="h100-sxm")
    ap.add_argument("--engine", default="hf-eager", help="engine profile name or YAML path")
    a = ap.parse_args(argv)
    try:
        df = compare(Path(a.data_dir), a.gpu, a.engine)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    pd.set_option("display.width", 200)
    for model, g in df.groupby("model", sort=False):
        g = g.copy()
        us = g["family"] != "kernels"
        g.loc[us, ["measured_s", "predicted_s"]] *= 1e6
        print(f"{model}: one decoder layer, batch {int(g['batch'].iloc[0])}, context {int(g['context'].iloc[0])} "
              "(µs; 'kernels' row: kernels per layer)")
        print(g[["family", "measured_s", "measured_kernels", "predicted_s"]].fillna(0).to_string(
            index=False, float_format=lambda x: f"{x:.1f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
