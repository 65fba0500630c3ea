"""``plan --emit`` of a disaggregated plan: per engine x prefill and y decode server scripts with
their pools' TP, a router naming them all, benchmarks aimed at the router, and the README."""
from __future__ import annotations

import json
import shlex

import yaml

from simulator.config.loader import scenario_from_dict
from simulator.planning.emit import emit
from simulator.planning.launch import recorded_flags
from simulator.planning.launch_pd import ROUTER_PORT

from .conftest import PLAN
from .test_launch_pd import pd_row

TOOLS = {"vllm": ("vllm", "vllm_proxy"), "sglang": ("sglang", "sglang_router"), "trtllm": ("trtllm", "trtllm_disagg")}
TP_FLAG = {"vllm": "--tensor-parallel-size", "sglang": "--tp-size", "trtllm": "--tp_size"}


def command(path) -> list[str]:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith(("#", "set ", "export ", "cd "))]
    return shlex.split(" ".join(ln.rstrip("\\") for ln in lines))


def test_disaggregated_emit_has_x_prefill_and_y_decode_servers_per_engine(tmp_path):
    out = tmp_path / "deploy"
    paths = emit(out, scenario_from_dict(PLAN), pd_row(x=3, y=2), target_rate=8.0)
    assert all(p.exists() for p in paths)
    rec = recorded_flags()
    for engine, (server_tool, router_tool) in TOOLS.items():
        d = out / engine
        pre, dec = sorted(d.glob("prefill_*.sh")), sorted(d.glob("decode_*.sh"))
        assert len(pre) == 3 and len(dec) == 2, engine
        ports = []
        for script, tp in [(p, "2") for p in pre] + [(p, "1") for p in dec]:
            cmd = command(script)
            assert " ".join(cmd).startswith(rec[server_tool]["command"]), script
            assert {c for c in cmd if c.startswith("--")} <= set(rec[server_tool]["flags"]), script
            assert cmd[cmd.index(TP_FLAG[engine]) + 1] == tp, script
            ports.append(cmd[cmd.index("--port") + 1])
        assert len(set(ports)) == 5, engine
        router = command(d / "router.sh")
        assert " ".join(router).startswith(rec[router_tool]["command"])
        assert {c for c in router if c.startswith("--")} <= set(rec[router_tool]["flags"]), engine
        if engine != "trtllm":
            assert all(p in " ".join(router) for p in ports), engine
    cfg = yaml.safe_load((out / "trtllm" / "disagg_config.yaml").read_text())
    assert [u.split(":")[1] for u in cfg["context_servers"]["urls"] + cfg["generation_servers"]["urls"]] == \
        [command(out / "trtllm" / f"{r}_{i}.sh")[command(out / "trtllm" / f"{r}_{i}.sh").index("--port") + 1]
         for r, n in (("prefill", 3), ("decode", 2)) for i in range(n)]
    ctx = yaml.safe_load((out / "trtllm" / "ctx_options.yaml").read_text())
    assert ctx["cache_transceiver_config"]["max_tokens_in_buffer"] == 512       # PLAN's fixed prompt
    assert "VLLM_NIXL_SIDE_CHANNEL_PORT" in (out / "vllm" / "prefill_0.sh").read_text()
    assert 'cd "$(dirname "$0")"' in (out / "trtllm" / "router.sh").read_text()       # beside its YAML


def test_benchmarks_aim_at_the_router_at_the_target_rate(tmp_path):
    out = tmp_path / "deploy"
    emit(out, scenario_from_dict(PLAN), pd_row(), target_rate=8.0)
    rec = recorded_flags()
    bench, ai = command(out / "bench_vllm.sh"), command(out / "bench_aiperf.sh")
    assert {c for c in bench if c.startswith("--")} <= set(rec["vllm_bench"]["flags"])
    assert {c for c in ai if c.startswith("--")} <= set(rec["aiperf"]["flags"])
    assert bench[bench.index("--base-url") + 1] == f"http://localhost:{ROUTER_PORT}"
    assert ai[ai.index("--url") + 1] == f"localhost:{ROUTER_PORT}"
    assert float(bench[bench.index("--request-rate") + 1]) == 8.0
    summary = json.loads((out / "plan.json").read_text())
    assert summary["launch"]["prefill"]["servers"] == 3 and summary["launch"]["decode"]["servers"] == 2
    assert summary["launch"]["prefill"]["gpu"] == "l4" and summary["launch"]["decode"]["tp"] == 1


def test_readme_says_how_many_of_each_and_the_link(tmp_path):
    out = tmp_path / "deploy"
    emit(out, scenario_from_dict(PLAN), pd_row(x=3, y=2), target_rate=8.0)
    text = (out / "README.md").read_text()
    assert "**3 prefill** and **2 decode**" in text
    assert "25 GB/s (200 Gb/s) per prefill server" in text
    # Llama-3.1-8B bf16 KV: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 bytes = 131072 B/token
    assert f"{512 * 131072 / 1e6:.4g} MB" in text
    for engine in TOOLS:
        assert f"`{engine}/router.sh`" in text


def test_medusa_plan_leaves_sglang_out_and_says_why(tmp_path):
    data = dict(PLAN, deployment=dict(PLAN["deployment"], speculative={"method": "medusa", "k": 3}))
    out = tmp_path / "deploy"
    emit(out, scenario_from_dict(data), pd_row(), target_rate=8.0)
    assert not (out / "sglang").exists() and (out / "vllm").is_dir() and (out / "trtllm").is_dir()
    assert "SGLang | not emitted: SGLang offers no Medusa" in (out / "README.md").read_text()
