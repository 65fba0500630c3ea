"""How much client think time moves servesim's closed-loop TTFT on measured engine cases.

    python benchmarks/closed_loop_jitter.py [--requests 1000]

Each case is a row of aiconfigurator-core's measured end-to-end table (`docs/validation/engines.md`):
a closed loop of fixed-length requests. With identical lengths the clients stay in lock-step waves;
this prints servesim's mean TTFT and TPOT with no think time and with exponential think times of
2 and 10 ms (a stand-in for client and API-server jitter), next to the measured means.
"""
from __future__ import annotations

import argparse

import numpy as np

from simulator.config.loader import scenario_from_dict
from simulator.engine.simulate import simulate
from simulator.tables import render, table

#: (model, gpu, engine, tp, weights, clients, prompt, output) -> measured (TTFT ms, TPOT ms), from
#: aiconfigurator-core 0.12.0 systems/silicon_sample.csv (vLLM 0.12.0, TensorRT-LLM 1.0.0rc3 rows).
CASES = {
    ("qwen3-32b", "h100-sxm", "vllm", 2, "bf16", 8, 1024, 128): (154.2, 18.0),
    ("qwen3-32b", "h100-sxm", "vllm", 2, "bf16", 16, 1024, 1024): (187.4, 17.4),
    ("qwen3-32b", "h100-sxm", "vllm", 4, "bf16", 8, 4096, 512): (425.9, 12.3),
    ("llama-3.1-8b", "h100-sxm", "trtllm", 1, "bf16", 8, 1024, 512): (550.0, 7.4),
    ("llama-3.1-8b", "h100-sxm", "trtllm", 1, "bf16", 32, 2048, 256): (255.9, 14.9),
}
THINK_S = (0.0, 0.002, 0.01)


def closed_loop(case: tuple, think_s: float, requests: int) -> tuple[float, float]:
    """servesim's mean TTFT and TPOT (ms) of one case with exponential think times of mean ``think_s``."""
    model, gpu, engine, tp, weights, clients, isl, osl = case
    s = scenario_from_dict({
        "model": model, "seed": 0, "slo": {"ttft_s": None, "tpot_s": None},
        "deployment": {"gpu": gpu, "engine": engine, "tp": tp, "weight_dtype": weights},
        "workload": {"arrival": {"process": "closed_loop", "concurrency": clients, "think_time_s": think_s,
                                 "think_time_dist": "exponential"},
                     "requests": max(requests, 2 * clients), "prompt_tokens": {"dist": "fixed", "value": isl},
                     "output_tokens": {"dist": "fixed", "value": osl}}})
    r = simulate(s).requests
    done = r.finish > 0
    ttft = (r.first_token - r.arrival)[done].mean() * 1e3
    tpot = ((r.finish - r.first_token) / np.maximum(r.output - 1, 1))[done].mean() * 1e3
    return float(ttft), float(tpot)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000, help="requests per case (default 1000)")
    args = ap.parse_args()
    heads = ["case", "measured TTFT / TPOT ms"] + [f"think {t * 1e3:g} ms" for t in THINK_S]
    out = table(heads, left=["case"])
    for case, (ttft, tpot) in CASES.items():
        model, gpu, engine, tp, _, clients, isl, osl = case
        sims = [closed_loop(case, t, args.requests) for t in THINK_S]
        out.add_row(f"{engine} {model} {tp}x{gpu} c{clients} {isl}/{osl}", f"{ttft:.0f} / {tpot:.1f}",
                    *[f"{a:.0f} / {b:.1f}" for a, b in sims])
    print(render(out))


if __name__ == "__main__":
    main()
