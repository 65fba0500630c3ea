"""``servesim plan --emit DIR``: the chosen plan's launch scripts (vLLM, SGLang, TensorRT-LLM) and
benchmark scripts (``vllm bench serve``, AIPerf), written as shell scripts plus a summary."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..config.scenario import Scenario
from ..errors import InputError
from ..workload.generate import generate
from .emit_pd import PDInputs, emit_pd
from .launch import BenchSpec, LaunchPlan, aiperf, bench_spec, launch_plan, sglang_launch, trtllm_options, trtllm_serve, \
    vllm_bench, vllm_serve
from .shell import script_text, write_script

TRT_OPTIONS = "trtllm_extra_options.yaml"


def _script(title: str, lp: LaunchPlan, cmd: list[str]) -> str:
    per = lp.tp * lp.pp
    head = [title, f"plan: {lp.replicas} replica(s) x {per} {lp.gpu} GPU(s) "
            f"(tp{lp.tp} pp{lp.pp}, {lp.weight_dtype} weights, {lp.kv_dtype} KV); this starts one replica:",
            "run one per replica on its own GPUs (CUDA_VISIBLE_DEVICES, another --port), behind a load balancer."]
    if lp.weight_dtype not in ("bf16", "fp16", "fp8"):
        head.append(f"{lp.weight_dtype} weights: point the model at a checkpoint quantized to {lp.weight_dtype}.")
    return script_text(head, cmd)


def emit(out_dir: str | Path, scenario: Scenario, row: dict[str, Any], target_rate: float) -> list[Path]:
    """Write the launch and benchmark scripts of ``row`` (a planner row) into ``out_dir``; the paths
    written. A disaggregated row gets its prefill and decode servers and router (:mod:`.emit_pd`)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("--emit", str(out_dir), "a directory (it is a file)")
    out.mkdir(parents=True, exist_ok=True)
    table = generate(scenario.workload, scenario.seed)
    isl = (float(np.mean(table.prompt_tokens)), float(np.std(table.prompt_tokens)))
    osl = (float(np.mean(table.output_tokens)), float(np.std(table.output_tokens)))
    if row["deployment"].get("kind") == "disaggregated":
        # the router takes the whole deployment's load: the check runs at the target rate
        b = bench_spec(scenario, row | {"operating_rate_per_replica": target_rate}, isl, osl)
        return emit_pd(out, scenario, row, PDInputs(target_rate, b, int(np.max(table.prompt_tokens))))
    return _emit_colocated(out, scenario, row, target_rate, bench_spec(scenario, row, isl, osl))


def _emit_colocated(out: Path, scenario: Scenario, row: dict[str, Any], target_rate: float,
                    b: BenchSpec) -> list[Path]:
    lp = launch_plan(scenario, row)
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
        written.append(write_script(out / name, _script(title, lp, cmd)))
    opts = out / TRT_OPTIONS
    opts.write_text(yaml.safe_dump(trtllm_options(lp), sort_keys=False))
    summary = out / "plan.json"
    summary.write_text(json.dumps({"target_rate": target_rate, "engine_simulated": scenario.deployment.engine,
                                   "plan": row, "launch": {k: v for k, v in vars(lp).items() if k != "speculative"},
                                   "bench": vars(b)}, indent=2, default=str) + "\n")
    return written + [opts, summary]
