"""``servesim plan --emit DIR`` for a prefill/decode-disaggregated plan: per engine a directory of
prefill and decode server scripts and the router that pairs them (:mod:`.launch_pd`), benchmark
scripts aimed at the router, a README that says how many of each to start and which KV link the
plan assumed, and ``plan.json``."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..catalog.models import load_model
from ..config.scenario import Scenario
from .launch import BenchSpec, LaunchPlan, aiperf, trtllm_serve, vllm_bench
from .launch_pd import (ROLES, SGLANG_TRANSFER, TRT_CACHE_BACKEND, VLLM_PROXY, PDPlan, nixl_side_channel_port,
                        pd_plan, sglang_pd_launch, sglang_router, trtllm_disagg, trtllm_disagg_config,
                        trtllm_pd_options, vllm_pd_serve, vllm_proxy)
from .shell import script_text, write_script

TRT_OPTIONS = {"prefill": "ctx_options.yaml", "decode": "gen_options.yaml"}
TRT_DISAGG = "disagg_config.yaml"
ENGINES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM"}


@dataclass(frozen=True)
class PDInputs:
    """What the emitter takes from the planned workload: the target rate, the router's check, and
    the longest prompt (TensorRT-LLM's KV transfer buffer)."""

    target_rate: float
    bench: BenchSpec
    max_prompt_tokens: int


def _pool_line(role: str, lp: LaunchPlan, count: int) -> str:
    return (f"{role} pool: {count} server(s), each {lp.tp * lp.pp} {lp.gpu} GPU(s) (tp{lp.tp} pp{lp.pp}), "
            f"{lp.weight_dtype} weights, {lp.kv_dtype} KV, max batch {lp.max_batch_size}, "
            f"{lp.max_batched_tokens} tokens per step")


def _server_head(engine: str, role: str, i: int, pd: PDPlan) -> list[str]:
    servers = pd.servers(role)
    lp = servers[i]
    return [f"{ENGINES[engine]}: {role} server {i + 1} of {len(servers)} (port {lp.port})",
            _pool_line(role, lp, len(servers)),
            "start it on its own GPUs (CUDA_VISIBLE_DEVICES); start every server before the router (README.md)."]


def _servers(engine: str, d: Path, pd: PDPlan, cmd, env=None) -> list[Path]:
    out = []
    for role in ROLES:
        for i, lp in enumerate(pd.servers(role)):
            text = script_text(_server_head(engine, role, i, pd), cmd(lp, role), env(lp) if env else None,
                               in_own_dir=engine == "trtllm")      # its options YAML lies beside it
            out.append(write_script(d / f"{role}_{i}.sh", text))
    return out


def _router(engine: str, d: Path, pd: PDPlan, what: str, cmd: list[str]) -> Path:
    # vLLM's proxy path is relative to a vLLM checkout; TensorRT-LLM's config lies beside the script
    head = [f"{ENGINES[engine]}: {what} on port {pd.router_port}, pairing {len(pd.prefill)} prefill and "
            f"{len(pd.decode)} decode server(s); start it after them.",
            "servers on other hosts: replace localhost by their addresses here."]
    if engine == "vllm":
        head.append("run it from a vLLM source checkout of the servers' version (the proxy is not in the wheel).")
    return write_script(d / "router.sh", script_text(head, cmd, in_own_dir=engine == "trtllm"))


def _vllm(d: Path, pd: PDPlan) -> list[Path]:
    paths = _servers("vllm", d, pd, vllm_pd_serve,
                     lambda lp: {"VLLM_NIXL_SIDE_CHANNEL_PORT": str(nixl_side_channel_port(lp))})
    return paths + [_router("vllm", d, pd, f"vLLM's NIXL proxy ({VLLM_PROXY} of the vLLM source tree)",
                            vllm_proxy(pd))]


def _sglang(d: Path, pd: PDPlan) -> list[Path]:
    paths = _servers("sglang", d, pd, sglang_pd_launch)
    return paths + [_router("sglang", d, pd, "sglang_router in PD mode", sglang_router(pd))]


def _trtllm(d: Path, pd: PDPlan) -> list[Path]:
    paths = _servers("trtllm", d, pd, lambda lp, role: trtllm_serve(lp, TRT_OPTIONS[role]))
    for role in ROLES:
        p = d / TRT_OPTIONS[role]
        p.write_text(yaml.safe_dump(trtllm_pd_options(pd, role), sort_keys=False))
        paths.append(p)
    cfg = d / TRT_DISAGG
    cfg.write_text(yaml.safe_dump(trtllm_disagg_config(pd), sort_keys=False))
    return paths + [cfg, _router("trtllm", d, pd, "trtllm-serve disaggregated", trtllm_disagg(TRT_DISAGG))]


def _kv_line(scenario: Scenario, pd: PDPlan, b: BenchSpec) -> str:
    kv = load_model(scenario.model).kv_bytes_per_token(pd.prefill[0].kv_dtype)
    mb = b.isl_mean * kv / 1e6
    return (f"A mean prompt ({b.isl_mean} tokens) carries {mb:.4g} MB of KV ({pd.prefill[0].kv_dtype}), "
            f"{mb / (pd.link_gbps * 1e3) * 1e3:.3g} ms on that link.")


def _readme(scenario: Scenario, row: dict[str, Any], pd: PDPlan, inp: PDInputs, engines: list[str],
            missing: dict[str, str]) -> str:
    b, x, y = inp.bench, len(pd.prefill), len(pd.decode)
    lines = [f"# Launch settings: {row['candidate']}", "",
             f"Disaggregated plan for {inp.target_rate:g} req/s: start **{x} prefill** and **{y} decode** "
             f"server(s), then one router on port {pd.router_port}; clients and benchmarks talk to the router.", "",
             f"- {_pool_line('prefill', pd.prefill[0], x)}; ports {pd.prefill[0].port}-{pd.prefill[-1].port}",
             f"- {_pool_line('decode', pd.decode[0], y)}; ports {pd.decode[0].port}-{pd.decode[-1].port}",
             f"- KV link assumed: {pd.link_gbps:g} GB/s ({pd.link_gbps * 8:g} Gb/s) per prefill server "
             f"(`--link-gbps`). {_kv_line(scenario, pd, b)} A slower network between the pools than this "
             "voids the plan's TTFT.", "",
             "| engine | servers | router | KV transfer |", "|---|---|---|---|"]
    transfer = {"vllm": "NixlConnector (`--kv-transfer-config`, kv_producer / kv_consumer)",
                "sglang": f"`--disaggregation-transfer-backend {SGLANG_TRANSFER}`",
                "trtllm": f"`cache_transceiver_config.backend: {TRT_CACHE_BACKEND}` ({', '.join(TRT_OPTIONS.values())})"}
    for e in engines:
        lines.append(f"| {ENGINES[e]} | `{e}/prefill_<i>.sh` x{x}, `{e}/decode_<j>.sh` x{y} | `{e}/router.sh` "
                     f"| {transfer[e]} |")
    lines += [f"| {ENGINES[e]} | not emitted: {why} | | |" for e, why in missing.items()]
    lines += ["", "All servers are written for one host (consecutive ports, `localhost` in the routers); across "
              "hosts, start each server on its host and put the hosts' addresses in the router's command "
              "(TensorRT-LLM: `disagg_config.yaml`). Give each server its own GPUs with CUDA_VISIBLE_DEVICES.",
              "", f"Check the plan: `bash bench_vllm.sh` or `bash bench_aiperf.sh` sends the planned lengths "
              f"(prompt {b.isl_mean}±{b.isl_std}, output {b.osl_mean}±{b.osl_std} tokens) at {b.rate:.4g} req/s "
              f"to the router (port {pd.router_port}); compare p99 TTFT/TPOT with `plan.json` "
              f"(TTFT {row['ttft_p99']:.3g} s, TPOT {row['tpot_p99']:.3g} s p99).",
              "", "Flags and their sources: `simulator/planning/data/engine_flags.yaml` (servesim)."]
    return "\n".join(lines) + "\n"


def emit_pd(out: Path, scenario: Scenario, row: dict[str, Any], inp: PDInputs) -> list[Path]:
    """Write the disaggregated plan ``row``'s launch and benchmark files into ``out``; the paths written."""
    pd = pd_plan(scenario, row, inp.max_prompt_tokens)
    spec = pd.decode[0].speculative
    missing = {"sglang": "SGLang offers no Medusa"} if spec is not None and spec.method == "medusa" else {}
    writers = {"vllm": _vllm, "sglang": _sglang, "trtllm": _trtllm}
    engines = [e for e in writers if e not in missing]
    written: list[Path] = []
    for e in engines:
        (out / e).mkdir(exist_ok=True)
        written += writers[e](out / e, pd)
    router = dataclasses.replace(pd.decode[0], port=pd.router_port)
    b = inp.bench
    title = f"check the whole deployment through its router at the target rate ({b.rate:.3g} req/s)"
    written.append(write_script(out / "bench_vllm.sh", script_text([title + ": vllm bench serve"],
                                                                   vllm_bench(router, b))))
    written.append(write_script(out / "bench_aiperf.sh", script_text([title + ": AIPerf"], aiperf(router, b))))
    readme = out / "README.md"
    readme.write_text(_readme(scenario, row, pd, inp, engines, missing))
    summary = out / "plan.json"
    launch = {role: {k: v for k, v in vars(pd.servers(role)[0]).items() if k not in ("speculative", "port")}
              | {"servers": len(pd.servers(role)), "ports": [s.port for s in pd.servers(role)]} for role in ROLES}
    summary.write_text(json.dumps({"target_rate": inp.target_rate, "engine_simulated": scenario.deployment.engine,
                                   "plan": row, "launch": launch | {"router_port": pd.router_port,
                                                                    "link_gbps": pd.link_gbps},
                                   "bench": vars(b)}, indent=2, default=str) + "\n")
    return written + [readme, summary]
