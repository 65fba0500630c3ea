"""Preemptions, KV peak and throughput of offline batches under each engine's scheduler rules.

Two offline workloads on Llama-3.1-8B, fp8 weights and KV, one H100, ``max_batch_size`` 2048:
300 requests of 20,000 prompt / 2,000 output tokens, and 2,000 requests of 128 / 2,048. Each runs
under the generic scheduler (engine ``fused``) and under the scheduler block of ``vllm``, ``sglang``
and ``trtllm``. To isolate scheduling from step pricing, the engine runs as a profile file holding
``fused``'s kernel and host-overhead fields plus that engine's scheduler block, so only the
scheduling rules and the server defaults they bring differ.

    python benchmarks/engine_schedulers.py [--requests-long 300] [--requests-short 2000]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

from simulator.catalog.engines import load_engine
from simulator.config import scenario_from_dict
from simulator.engine.simulate import simulate
from simulator.metrics.summary import summarize

ENGINES = ("fused", "vllm", "sglang", "trtllm")


def engine_file(name: str, folder: Path) -> str:
    """``fused``'s pricing with engine ``name``'s scheduler block, as a profile file (``fused`` itself)."""
    if name == "fused":
        return "fused"
    prof = load_engine("fused").model_dump(exclude_none=True)
    prof.update(name=f"{name}-rules", description=f"fused pricing, {name} scheduler",
                scheduler=load_engine(name).scheduler.model_dump(exclude_none=True))  # type: ignore[union-attr]
    path = folder / f"{name}-rules.yaml"
    path.write_text(yaml.safe_dump(prof), encoding="utf-8")
    return str(path)


def run(engine: str, requests: int, prompt: int, output: int, extra: dict) -> dict:
    dep = {"gpu": "h100-sxm", "engine": engine, "weight_dtype": "fp8", "kv_dtype": "fp8",
           "batching": {"max_batch_size": 2048, **extra}}
    s = scenario_from_dict({
        "model": "llama-3.1-8b", "deployment": dep, "seed": 0,
        "workload": {"arrival": {"process": "offline"}, "requests": requests,
                     "prompt_tokens": {"dist": "fixed", "value": prompt},
                     "output_tokens": {"dist": "fixed", "value": output}}})
    t = time.perf_counter()
    res = simulate(s)
    summ = summarize(res)
    pre = int(res.requests.preemptions.sum())
    return {"completed": summ["completed"], "rejected": summ["rejected"], "preemptions": pre,
            "preemptions_per_request": round(pre / requests, 4),
            "kv_peak": round(max(res.kv_blocks_peak) / res.kv_blocks, 4),
            "output_tok_s": round(summ["throughput_output_tokens_per_s"], 1),
            "makespan_s": round(float(res.requests.finish.max()), 2), "wall_s": round(time.perf_counter() - t, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests-long", type=int, default=300)
    ap.add_argument("--requests-short", type=int, default=2000)
    a = ap.parse_args()
    cases = [("20000/2000", a.requests_long, 20000, 2000), ("128/2048", a.requests_short, 128, 2048)]
    with tempfile.TemporaryDirectory() as tmp:
        for label, n, p, o in cases:
            for name in ENGINES:
                row = run(engine_file(name, Path(tmp)), n, p, o, {})
                print(json.dumps({"case": label, "engine": name, **row}), flush=True)
            if p > 8192:   # trtllm's server default leaves chunked prefill off: such prompts are refused
                row = run(engine_file("trtllm", Path(tmp)), n, p, o, {"chunked_prefill": True})
                print(json.dumps({"case": label, "engine": "trtllm+chunked_prefill", **row}), flush=True)


if __name__ == "__main__":
    main()
