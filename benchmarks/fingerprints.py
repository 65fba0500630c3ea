"""Fingerprints of whole simulations: a SHA-1 over every request column, every step-log column and
the per-request ITL percentiles, for the examples, the engine's edge scenarios and a few engine
profiles. A refactoring that must keep results bit-identical prints the same lines before and after.

    python benchmarks/fingerprints.py [--requests 300] [--out fingerprints.txt]

The hash is the one ``tests/engine/test_decode_set.py`` compares the compiled and reference decode
sets with; the edge scenarios are that test's ``SCENARIOS``.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simulator.config import load_scenario, scenario_from_dict
from simulator.engine.simulate import SimulationResult, simulate

ROOT = Path(__file__).resolve().parents[1]
_LOADED: dict[str, Any] = {
    "workload.requests": 300, "workload.arrival.rate": 40.0,
    "workload.prompt_tokens": {"dist": "lognormal", "median": 400, "sigma": 0.9, "max": 4000},
    "workload.output_tokens": {"dist": "lognormal", "median": 120, "sigma": 0.9, "max": 1500}}
EDGE: dict[str, dict[str, Any]] = {
    "plain": {},
    "loaded": _LOADED,
    "recompute, short of blocks": {**_LOADED, "deployment.kv_cache.num_blocks": 500},
    "swap, short of blocks": {**_LOADED, "deployment.kv_cache.num_blocks": 500,
                              "deployment.kv_cache.preemption": "swap"},
    "pipeline of 3": {**_LOADED, "deployment.pp": 3, "deployment.kv_cache.num_blocks": 700},
    "speculative": {**_LOADED, "deployment.speculative": {"method": "draft_model", "draft_model": "llama-3.2-1b",
                                                           "k": 4, "acceptance": 0.7}},
    "prefix cache": {**_LOADED, "deployment.kv_cache.prefix_caching": True,
                     "workload.prefix": {"system_prompt_tokens": 512, "share": 0.8, "prompts": 3}},
    "sliding window": {**_LOADED, "model": "gemma-3-12b"},
    "polled every 10 steps": {**_LOADED, "deployment.batching.recv_interval": 10},
    "disaggregated": {**_LOADED, "deployment.disaggregation": {
        "prefill": {"replicas": 1}, "decode": {"replicas": 2},
        "link": {"bandwidth_gbps": 50.0, "latency_s": 0.002}}},
}
ENGINES: dict[str, dict[str, Any]] = {
    "vllm": {**_LOADED, "deployment.engine": "vllm"},
    "sglang": {**_LOADED, "deployment.engine": "sglang"},
    "trtllm": {**_LOADED, "deployment.engine": "trtllm"},
    "vllm speculative": {**EDGE["speculative"], "deployment.engine": "vllm"},
    "vllm prefix cache": {**EDGE["prefix cache"], "deployment.engine": "vllm"},
    "sglang disaggregated": {**EDGE["disaggregated"], "deployment.engine": "sglang"},
    "vllm swap": {**EDGE["swap, short of blocks"], "deployment.engine": "vllm"},
    "sglang speculative, polled": {**EDGE["speculative"], "deployment.engine": "sglang",
                                   "deployment.batching.recv_interval": 10},
    "static": {**_LOADED, "deployment.batching.policy": "static", "deployment.batching.max_batch_size": 16},
    "dynamic": {**_LOADED, "deployment.batching.policy": "dynamic", "deployment.batching.max_batch_size": 16},
    "dynamic, short of blocks": {**_LOADED, "deployment.batching.policy": "dynamic",
                                 "deployment.kv_cache.num_blocks": 400},
}


def small(**over: Any):
    """The Llama-3.1-8B / H100 scenario of the engine tests with dotted-key overrides."""
    base = {"model": "llama-3.1-8b", "deployment": {"gpu": "h100-sxm"},
            "workload": {"arrival": {"process": "poisson", "rate": 5.0}, "requests": 200,
                         "prompt_tokens": {"dist": "fixed", "value": 256},
                         "output_tokens": {"dist": "fixed", "value": 32}},
            "seed": 1}
    return scenario_from_dict(base, over)


def fingerprint(res: SimulationResult) -> str:
    h, q = hashlib.sha1(), res.requests
    for k in ("first_token", "last_token", "finish", "max_itl", "generated", "kv", "preemptions", "replica"):
        h.update(np.ascontiguousarray(getattr(q, k)).tobytes())
    for k in sorted(res.steps):
        h.update(np.ascontiguousarray(res.steps[k]).tobytes())
    p50, p99 = res.request_itl()
    h.update(np.nan_to_num(p50).tobytes() + np.nan_to_num(p99).tobytes())
    return h.hexdigest()


def examples(requests: int) -> list[tuple[str, Any]]:
    out = []
    for p in sorted((ROOT / "examples").glob("*.yaml")):
        doc = yaml.safe_load(p.read_text()) or {}
        if "workload" not in doc:
            continue
        arrival = (doc["workload"] or {}).get("arrival") or {}
        if arrival.get("process") == "trace" and not (p.parent / arrival["path"]).resolve().exists():
            out.append((f"example {p.stem}", None))
            continue
        out.append((f"example {p.stem}", load_scenario(p, {"workload.requests": requests})))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300, help="requests per example scenario")
    ap.add_argument("--out", type=Path, help="also write the lines to this file")
    args = ap.parse_args(argv)
    runs = examples(args.requests)
    runs += [(f"edge {k}", small(**v)) for k, v in EDGE.items()]
    runs += [(f"engine {k}", small(**v)) for k, v in ENGINES.items()]
    lines = []
    for name, scenario in runs:
        fp = "skipped (trace not present)" if scenario is None else fingerprint(simulate(scenario))
        lines.append(f"{fp}  {name}")
        print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
