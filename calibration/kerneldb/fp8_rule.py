"""Which database curve prices fp8 GEMMs: checked against our own fp8 kernels on H100 and H200.

    python -m calibration.kerneldb.fp8_rule [--engine vllm]

GPUs that only the kernel database measured take their GEMM curves from its tables
(``simulator/calibration/profiles.py``). For fp8 there are two candidates: the database's fp8 GEMM
curve, or its bf16 GEMM curve applied to the fp8 roofline (fp8 bytes, fp8 peak). On H100 and H200
our own suite timed ``torch._scaled_mm`` fp8 kernels (``calibration/data/<gpu>/gemm.csv``), which
neither database curve was fitted on. This prices every one of those rows with each candidate and
prints the median error, overall and on model-weight shapes (K·N >= 2^24) at decode batch (M <= 256)
and beyond. Needs no GPU and no database: the fitted curves are in ``hwprofiles/kernels/``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.calibration.fit import measured_s
from simulator.calibration.io import as_float, read_rows
from simulator.catalog.gpus import load_gpu
from simulator.catalog.kernels import load_kernel_profile
from simulator.paths import calibration_data_dir
from simulator.catalog.gpu import Curve
from simulator.perf.roofline import log2, op_time

GPUS = ("h100-sxm", "h200-sxm")


@dataclass(frozen=True)
class RuleError:
    """Signed errors (predicted / measured − 1) of one candidate curve on one GPU's fp8 rows."""

    gpu: str
    curve: str
    errors: np.ndarray
    weights: np.ndarray   # K·N >= 2^24
    decode: np.ndarray    # M <= 256

    def median(self, mask: np.ndarray | None = None) -> float:
        e = self.errors if mask is None else self.errors[mask]
        return float(np.median(np.abs(e)))

    def bias(self, mask: np.ndarray | None = None) -> float:
        e = self.errors if mask is None else self.errors[mask]
        return float(np.median(e))


def fp8_rows(gpu: str) -> pd.DataFrame:
    """Our measured fp8 GEMM rows of ``gpu`` (m, k, n, flops, bytes, seconds)."""
    rows = [r for r in read_rows(calibration_data_dir() / gpu / "gemm.csv") if r["dtype"] == "fp8"]
    df = pd.DataFrame({c: [as_float(r[c]) for r in rows] for c in ("m", "k", "n", "flops", "bytes")})
    df["seconds"] = [measured_s(r) for r in rows]
    return df[df["seconds"] > 0]


def candidates(gpu: str, engine: str) -> dict[str, Curve]:
    """The fp8 curve of our own fit (reference), and the database's fp8 and bf16 GEMM curves."""
    own = load_gpu(gpu).efficiency.curves
    db = load_kernel_profile(gpu, engine)
    if db is None:
        raise SystemExit(f"no hwprofiles/kernels/{gpu}/{engine}.yaml")
    return {"own fp8 (fitted on these rows)": own["gemm_fp8"],
            f"database {engine} fp8": db.efficiency.curves["gemm_fp8"],
            f"database {engine} bf16 on the fp8 roofline": db.efficiency.curves["gemm_bf16"]}


def rule_errors(gpu: str, engine: str = "vllm") -> list[RuleError]:
    """Each candidate's errors on ``gpu``'s measured fp8 rows."""
    base = load_gpu(gpu)
    df = fp8_rows(gpu)
    out = []
    for name, curve in candidates(gpu, engine).items():
        g = base.model_copy(deep=True)
        g.efficiency.curves["gemm_fp8"] = curve
        pred = np.array([op_time(g, "gemm", r.flops, r.bytes, "fp8", log2(r.m), log2(r.k * r.n)).seconds
                         for r in df.itertuples()])
        out.append(RuleError(gpu, name, pred / df["seconds"].to_numpy() - 1,
                             (df["k"] * df["n"] >= 2 ** 24).to_numpy(), (df["m"] <= 256).to_numpy()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration.kerneldb.fp8_rule", description=__doc__)
    ap.add_argument("--engine", default="vllm", choices=("vllm", "sglang", "trtllm"))
    a = ap.parse_args(argv)
    print("| GPU | curve | rows | median \\|error\\| | median error | weights, M <= 256 | weights, M > 256 |")
    print("|---|---|---|---|---|---|---|")
    for gpu in GPUS:
        for r in rule_errors(gpu, a.engine):
            w, d = r.weights, r.decode
            print(f"| {gpu} | {r.curve} | {len(r.errors)} | {r.median():.1%} | {r.bias():+.1%} | "
                  f"{r.median(w & d):.1%} ({r.bias(w & d):+.1%}) | {r.median(w & ~d):.1%} ({r.bias(w & ~d):+.1%}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
