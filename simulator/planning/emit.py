"""``servesim plan --emit DIR``: the chosen plan's launch scripts (vLLM, SGLang, TensorRT-LLM) and
benchmark scripts (``vllm bench serve``, AIPerf), written as shell scripts plus a summary."""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..config.scenario import Scenario
from ..errors import InputError
from ..workload.generate import generate
from .launch import LaunchPlan, aiperf, bench_spec, launch_plan, sglang_launch, trtllm_options, trtllm_serve, \
    vllm_bench, vllm_serve

TRT_OPTIONS = "trtllm_extra_options.yaml"


def _pairs(cmd: list[str]) -> list[str]:
    """The command quoted for the shell: the program and its positional words first, then one
    ``--flag value...`` group per line."""
    parts: list[str] = []
    for c in cmd:
        if not parts or c.startswith("--"):
            parts.append(shlex.quote(c))
        else:
            parts[-1] += " " + shlex.quote(c)
    return parts


def _script(title: str, lp: LaunchPlan, cmd: list[str]) -> str:
    per = lp.tp * lp.pp
    head = ["#!/usr/bin/env bash", f"# {title}", f"# plan: {lp.replicas} replica(s) x {per} {lp.gpu} GPU(s) "
            f"(tp{lp.tp} pp{lp.pp}, {lp.weight_dtype} weights, {lp.kv_dtype} KV); this starts one replica:",
            "# run one per replica on its own GPUs (CUDA_VISIBLE_DEVICES, another --port), behind a load balancer."]
    if lp.weight_dtype not in ("bf16", "fp16", "fp8"):
        head.append(f"# {lp.weight_dtype} weights: point the model at a checkpoint quantized to {lp.weight_dtype}.")
    body = " \\\n    ".join(_pairs(cmd))
    return "\n".join(head) + "\nset -euo pipefail\n" + body + "\n"


def emit(out_dir: str | Path, scenario: Scenario, row: dict[str, Any], target_rate: float) -> list[Path]:
    """Write the launch and benchmark scripts of ``row`` (a planner row) into ``out_dir``; the paths written."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("--emit", str(out_dir), "a directory (it is a file)")
    out.mkdir(parents=True, exist_ok=True)
    lp = launch_plan(scenario, row)
    table = generate(scenario.workload, scenario.seed)
    isl = (float(np.mean(table.prompt_tokens)), float(np.std(table.prompt_tokens)))
    osl = (float(np.mean(table.output_tokens)), float(np.std(table.output_tokens)))
    b = bench_spec(scenario, row, isl, osl)
    scripts = {"launch_vllm.sh": ("vLLM: vllm serve", vllm_serve(lp)),
               "launch_trtllm.sh": ("TensorRT-LLM: trtllm-serve (options in " + TRT_OPTIONS + ")",
                                    trtllm_serve(lp, TRT_OPTIONS)),
               "bench_vllm.sh": (f"check one replica at its operating rate ({b.rate:.3g} req/s): vllm bench serve",
                                 vllm_bench(lp, b)),
               "bench_aiperf.sh": (f"check one replica at its operating rate ({b.rate:.3g} req/s): AIPerf",
                                   aiperf(lp, b))}
    if lp.speculative is None or lp.speculative.method != "medusa":      # SGLang offers no Medusa
        scripts["launch_sglang.sh"] = ("SGLang: python -m sglang.launch_server", sglang_launch(lp))
    written = []
    for name, (title, cmd) in scripts.items():
        p = out / name
        p.write_text(_script(title, lp, cmd))
        p.chmod(0o755)
        written.append(p)
    opts = out / TRT_OPTIONS
    opts.write_text(yaml.safe_dump(trtllm_options(lp), sort_keys=False))
    summary = out / "plan.json"
    summary.write_text(json.dumps({"target_rate": target_rate, "engine_simulated": scenario.deployment.engine,
                                   "plan": row, "launch": {k: v for k, v in vars(lp).items() if k != "speculative"},
                                   "bench": vars(b)}, indent=2, default=str) + "\n")
    return written + [opts, summary]
