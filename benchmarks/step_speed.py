"""Cost of one step-time prediction (the engine calls it for every step it simulates).

    python benchmarks/step_speed.py [--out docs/benchmarks/step_speed.json]

Measures, for Llama-3.1-8B on h100-sxm: (a) a cold prediction with the full breakdown, (b) the
engine's memoised fast path for mixed batches (decode sequences with varying summed context plus
an occasional prefill chunk) after warm-up. Target: under 20 microseconds per call for (b).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone

import numpy as np

from simulator.catalog.engines import load_engine
from simulator.catalog.gpus import load_gpu
from simulator.catalog.models import load_model
from simulator.perf.step import BatchShape, StepModel


def shapes(n: int, seed: int) -> list[BatchShape]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        dec = int(rng.integers(1, 257))
        ctx = float(dec * rng.integers(200, 3000))
        if rng.random() < 0.2:
            c = int(rng.integers(16, 4096))
            out.append(BatchShape(prefill_tokens=c, prefill_seqs=1, prefill_pairs=c * (c + 1) / 2, prefill_kv=c,
                                  decode_seqs=dec, decode_ctx=ctx))
        else:
            out.append(BatchShape(decode_seqs=dec, decode_ctx=ctx))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    a = ap.parse_args()
    sm = StepModel(load_model("llama-3.1-8b"), load_gpu("h100-sxm"), load_engine("fused"))
    cold = shapes(2000, 1)
    t = time.perf_counter()
    for b in cold:
        StepModel(sm.model, sm.gpu, sm.engine).price(b, exact=True, detail=True)
    cold_us = (time.perf_counter() - t) / len(cold) * 1e6
    warm = shapes(200_000, 2)
    for b in warm[:100_000]:
        sm.price(b)
    t = time.perf_counter()
    for b in warm[100_000:]:
        sm.price(b)
    warm_us = (time.perf_counter() - t) / 100_000 * 1e6
    res = {"cold_full_breakdown_us": cold_us, "warm_memoised_us": warm_us,
           "meta": {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "command": "python benchmarks/step_speed.py"}}
    print(f"cold (new model, full breakdown): {cold_us:8.1f} us/call")
    print(f"warm (engine fast path, memoised): {warm_us:8.1f} us/call")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
