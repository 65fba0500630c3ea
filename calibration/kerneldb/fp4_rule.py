"""Why compute-bound NVFP4 GEMMs take the database's NVFP4 efficiency, not the bf16 one.

    python -m calibration.kerneldb.fp4_rule [--engine vllm]

Before this rule, an fp4 GEMM read the fp8 curve, which on GPUs that only the kernel database measured
is the bf16 curve (``FP8_FROM_BF16``): fp4 tensor cores were assumed to reach the same fraction of
their peak as bf16 ones. The database's NVFP4 tables (``gemm_fp4`` in ``hwprofiles/kernels/<gpu>/``,
fitted by ``python -m calibration.kerneldb fit``) say otherwise where no per-call floor can matter:
at large M on weight-sized K·N the GEMMs are compute-bound, and there the fraction of peak is printed
for both curves (``simulator/perf/roofline.py`` ``fp4_gemm_time`` applies the NVFP4 one to the FLOPs only).
Needs no GPU and no database: the fitted curves are in ``hwprofiles/kernels/``.
"""
from __future__ import annotations

import argparse

import numpy as np

from simulator.catalog.gpu import Curve
from simulator.catalog.kernels import load_kernel_profile
from simulator.catalog.gpus import load_gpu
from simulator.perf.roofline import evaluate

#: GPUs with fp4 tensor cores whose kernel-database overlay has an NVFP4 GEMM curve.
GPUS = ("b200", "gb200", "gb300", "rtx-pro-6000-server")
#: Compute-bound points: log2 M (4,096 .. 16,384 rows) x log2 K·N (2^26 .. 2^28, model weights).
LOG2_M = (12.0, 13.0, 14.0)
LOG2_KN = (26.0, 27.0, 28.0)


def mean_efficiency(curve: Curve) -> float:
    """The curve's mean fraction of its own peak over the compute-bound points."""
    return float(np.mean([evaluate(curve, x, y) for x in LOG2_M for y in LOG2_KN]))


def rows(engine: str) -> list[tuple[str, float, float, float]]:
    """(gpu, bf16 efficiency, NVFP4 efficiency, their ratio) per GPU that has both curves; the ratio is
    the old rule's fp4 time (bf16 efficiency on the fp4 roofline) over the new one's at those points."""
    out = []
    for gpu in GPUS:
        k = load_kernel_profile(gpu, engine)
        if k is None or "gemm_fp4" not in k.efficiency.curves or "fp4" not in load_gpu(gpu).dense_tflops:
            continue
        bf16 = mean_efficiency(k.efficiency.curves["gemm_bf16"])
        fp4 = mean_efficiency(k.efficiency.curves["gemm_fp4"])
        out.append((gpu, bf16, fp4, fp4 / bf16))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration.kerneldb.fp4_rule", description=__doc__)
    ap.add_argument("--engine", default="vllm", choices=("vllm", "sglang", "trtllm"))
    a = ap.parse_args(argv)
    found = rows(a.engine)
    if not found:
        print(f"no {a.engine} overlay with an NVFP4 GEMM curve")
        return 1
    print("| GPU | bf16 GEMMs, fraction of bf16 peak | NVFP4 GEMMs, fraction of fp4 peak | old fp4 price / measured |")
    print("|---|---|---|---|")
    for gpu, bf16, fp4, ratio in found:
        print(f"| {gpu} | {bf16:.0%} | {fp4:.0%} | {ratio:.2f} |")
    print(f"\nM = 2^{LOG2_M[0]:.0f}..2^{LOG2_M[-1]:.0f}, K·N = 2^{LOG2_KN[0]:.0f}..2^{LOG2_KN[-1]:.0f}, "
          f"{a.engine} tables; the last column is what pricing fp4 at the bf16 efficiency did there.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
