"""Launch commands for a prefill/decode-disaggregated plan: x prefill and y decode servers, each
with its own pool's GPU, TP, batching limits and KV settings, and the router that pairs them.

* vLLM: ``vllm serve ... --kv-transfer-config`` with the NixlConnector (``kv_producer`` on prefill
  servers, ``kv_consumer`` on decode servers) and the proxy of vLLM's NIXL example
  (``toy_proxy_server.py --prefiller-hosts/--prefiller-ports/--decoder-hosts/--decoder-ports``).
* SGLang: ``python -m sglang.launch_server ... --disaggregation-mode prefill|decode`` over NIXL,
  one bootstrap port per prefill server, and ``python -m sglang_router.launch_router
  --pd-disaggregation --prefill URL PORT ... --decode URL ...``.
* TensorRT-LLM: ``trtllm-serve`` context and generation servers whose options YAML carries
  ``cache_transceiver_config``, and ``trtllm-serve disaggregated --config_file`` with the
  ``context_servers``/``generation_servers`` of ``disagg_config.yaml``.

Sources and versions are in ``data/engine_flags.yaml``. Servers are numbered in one sequence
(prefill first) and get consecutive ports from :data:`SERVER_PORT`, so the commands work on one
host as written; on several hosts only the router's host names change.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..config.scenario import Scenario
from ..errors import InputError
from .launch import LaunchPlan, launch_plan, sglang_launch, trtllm_options, vllm_serve

ROUTER_PORT = 8000
SERVER_PORT = 8100             # server k (prefill 0..x-1, then decode 0..y-1) listens on SERVER_PORT + k
NIXL_SIDE_CHANNEL_PORT = 5600  # vLLM's default VLLM_NIXL_SIDE_CHANNEL_PORT; server k takes 5600 + k
SGLANG_BOOTSTRAP_PORT = 8998   # SGLang's default --disaggregation-bootstrap-port; prefill i takes 8998 + i
#: Most servers one emitted plan numbers: keeps the port ranges above apart (8100 + k < 8998).
MAX_SERVERS = SGLANG_BOOTSTRAP_PORT - SERVER_PORT
HOST = "localhost"
VLLM_PROXY = "tests/v1/kv_connector/nixl_integration/toy_proxy_server.py"
SGLANG_TRANSFER = "nixl"       # the transfer backend vLLM's connector uses too (SGLang's default: mooncake)
TRT_CACHE_BACKEND = "UCX"      # the backend of TensorRT-LLM's examples/disaggregated/README.md
ROLES = ("prefill", "decode")


@dataclass(frozen=True)
class PDPlan:
    """The servers of a disaggregated plan: one :class:`LaunchPlan` per server (its own port), the
    KV link the plan assumed (GB/s per prefill replica), and the longest prompt of the workload."""

    prefill: tuple[LaunchPlan, ...]
    decode: tuple[LaunchPlan, ...]
    link_gbps: float
    max_prompt_tokens: int
    router_port: int = ROUTER_PORT

    def servers(self, role: str) -> tuple[LaunchPlan, ...]:
        return self.prefill if role == "prefill" else self.decode


def pd_plan(scenario: Scenario, row: dict[str, Any], max_prompt_tokens: int) -> PDPlan:
    """The :class:`PDPlan` of a disaggregated planner row on the planned scenario."""
    dep = row["deployment"]
    if dep.get("kind") != "disaggregated":
        raise InputError("--emit", dep.get("kind"), "a disaggregated plan here")
    pools = {}
    for role in ROLES:
        pool = dep[role]
        one = launch_plan(scenario, {"deployment": dep | {"kind": "aggregated", "gpu": pool["gpu"], "tp": pool["tp"]},
                                     "replicas": pool["replicas"]})
        pools[role] = (one, pool["replicas"])
    x, y = pools["prefill"][1], pools["decode"][1]
    if x + y > MAX_SERVERS:
        raise InputError("--emit", f"{x} prefill + {y} decode servers", f"at most {MAX_SERVERS} servers in all")
    pre = tuple(dataclasses.replace(pools["prefill"][0], port=SERVER_PORT + i) for i in range(x))
    dec = tuple(dataclasses.replace(pools["decode"][0], port=SERVER_PORT + x + j) for j in range(y))
    return PDPlan(pre, dec, float(dep["link_gbps"]), max_prompt_tokens)


def nixl_side_channel_port(lp: LaunchPlan) -> int:
    """vLLM's NIXL handshake port of a server: unique per server on a host."""
    return NIXL_SIDE_CHANNEL_PORT + lp.port - SERVER_PORT


def vllm_pd_serve(lp: LaunchPlan, role: str) -> list[str]:
    """``vllm serve`` of one prefill (KV producer) or decode (KV consumer) server over NIXL."""
    conf = {"kv_connector": "NixlConnector", "kv_role": "kv_producer" if role == "prefill" else "kv_consumer"}
    return vllm_serve(lp) + ["--kv-transfer-config", json.dumps(conf, separators=(",", ":"))]


def vllm_proxy(pd: PDPlan) -> list[str]:
    """vLLM's NIXL example proxy: prefill on a prefill server, then decode on a decode server (round robin)."""
    return ["python", VLLM_PROXY, "--port", str(pd.router_port),
            "--prefiller-hosts", *[HOST] * len(pd.prefill), "--prefiller-ports", *[str(s.port) for s in pd.prefill],
            "--decoder-hosts", *[HOST] * len(pd.decode), "--decoder-ports", *[str(s.port) for s in pd.decode]]


def sglang_bootstrap_port(lp: LaunchPlan) -> int:
    return SGLANG_BOOTSTRAP_PORT + lp.port - SERVER_PORT


def sglang_pd_launch(lp: LaunchPlan, role: str) -> list[str]:
    """SGLang server of one pool: ``--disaggregation-mode`` over NIXL; prefill servers get a bootstrap port."""
    cmd = sglang_launch(lp) + ["--disaggregation-mode", role, "--disaggregation-transfer-backend", SGLANG_TRANSFER]
    if role == "prefill":
        cmd += ["--disaggregation-bootstrap-port", str(sglang_bootstrap_port(lp))]
    return cmd


def sglang_router(pd: PDPlan) -> list[str]:
    """SGLang's router in PD mode: every prefill server with its bootstrap port, every decode server."""
    cmd = ["python", "-m", "sglang_router.launch_router", "--pd-disaggregation"]
    for s in pd.prefill:
        cmd += ["--prefill", f"http://{HOST}:{s.port}", str(sglang_bootstrap_port(s))]
    for s in pd.decode:
        cmd += ["--decode", f"http://{HOST}:{s.port}"]
    return cmd + ["--host", "0.0.0.0", "--port", str(pd.router_port)]


def trtllm_pd_options(pd: PDPlan, role: str) -> dict[str, Any]:
    """A pool's ``--extra_llm_api_options`` YAML: the colocated options plus the KV cache transceiver
    (its buffer at least the longest prompt, as TensorRT-LLM's disaggregated README advises); context
    servers run without the overlap scheduler, which that README says they do not support yet."""
    opts = trtllm_options(pd.servers(role)[0])
    if role == "prefill":
        opts["disable_overlap_scheduler"] = True
    opts["cache_transceiver_config"] = {"backend": TRT_CACHE_BACKEND, "max_tokens_in_buffer": pd.max_prompt_tokens}
    return opts


def trtllm_disagg_config(pd: PDPlan) -> dict[str, Any]:
    """``disagg_config.yaml`` of ``trtllm-serve disaggregated``: the router's port and every server's URL."""
    return {"hostname": HOST, "port": pd.router_port, "backend": "pytorch",
            "context_servers": {"num_instances": len(pd.prefill), "urls": [f"{HOST}:{s.port}" for s in pd.prefill]},
            "generation_servers": {"num_instances": len(pd.decode),
                                   "urls": [f"{HOST}:{s.port}" for s in pd.decode]}}


def trtllm_disagg(config_file: str) -> list[str]:
    """The TensorRT-LLM router: ``trtllm-serve disaggregated --config_file disagg_config.yaml``."""
    return ["trtllm-serve", "disaggregated", "--config_file", config_file]
