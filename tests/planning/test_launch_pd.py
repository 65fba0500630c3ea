"""Disaggregated launch commands: every flag and YAML key is one the engine documents (recorded
list), each server carries its own pool's values, and the router names every server once."""
from __future__ import annotations

import pytest

from simulator.config.loader import scenario_from_dict
from simulator.errors import InputError
from simulator.planning.launch_pd import (MAX_SERVERS, SERVER_PORT, nixl_side_channel_port, pd_plan,
                                          sglang_bootstrap_port, sglang_pd_launch, sglang_router, trtllm_disagg,
                                          trtllm_disagg_config, trtllm_pd_options, vllm_pd_serve, vllm_proxy)
from simulator.planning.launch import recorded_flags, trtllm_serve

from .conftest import PLAN
from .test_launch import flags, keys, value


def pd_row(x: int = 3, y: int = 2, pre=("l4", 2), dec=("a100-sxm-80gb", 1)) -> dict:
    """A disaggregated planner row as ``plan_run`` writes it (two GPU types: prefill L4 tp2, decode A100 tp1)."""
    return {"candidate": f"{x}P {pre[0]} tp{pre[1]} + {y}D {dec[0]} tp{dec[1]} bf16 b64/t8192",
            "layout": "disaggregated", "replicas": x + y, "ttft_p99": 0.9, "tpot_p99": 0.02,
            "deployment": {"kind": "disaggregated", "gpu": dec[0], "tp": dec[1], "pp": 1, "weight_dtype": "bf16",
                           "max_batch_size": 64, "max_batched_tokens": 8192,
                           "prefill": {"gpu": pre[0], "tp": pre[1], "replicas": x},
                           "decode": {"gpu": dec[0], "tp": dec[1], "replicas": y}, "link_gbps": 25.0}}


@pytest.fixture
def pd():
    return pd_plan(scenario_from_dict(PLAN), pd_row(), max_prompt_tokens=4321)


def test_pools_keep_their_own_gpu_tp_and_ports(pd):
    assert [s.gpu for s in pd.prefill] == ["l4"] * 3 and [s.tp for s in pd.prefill] == [2] * 3
    assert [s.gpu for s in pd.decode] == ["a100-sxm-80gb"] * 2 and [s.tp for s in pd.decode] == [1] * 2
    ports = [s.port for s in pd.prefill + pd.decode]
    assert ports == list(range(SERVER_PORT, SERVER_PORT + 5)) and pd.router_port not in ports
    assert pd.link_gbps == 25.0 and pd.max_prompt_tokens == 4321
    assert all(s.max_batch_size == 64 and s.max_batched_tokens == 8192 for s in pd.prefill + pd.decode)


def test_every_flag_and_key_is_recorded_as_valid(pd):
    rec = recorded_flags()
    cmds = [("vllm", vllm_pd_serve(s, r)) for r, s in (("prefill", pd.prefill[0]), ("decode", pd.decode[0]))]
    cmds += [("sglang", sglang_pd_launch(s, r)) for r, s in (("prefill", pd.prefill[0]), ("decode", pd.decode[0]))]
    cmds += [("trtllm", trtllm_serve(pd.prefill[0], "ctx_options.yaml")), ("vllm_proxy", vllm_proxy(pd)),
             ("sglang_router", sglang_router(pd)), ("trtllm_disagg", trtllm_disagg("disagg_config.yaml"))]
    for tool, cmd in cmds:
        assert " ".join(cmd).startswith(rec[tool]["command"]), tool
        bad = set(flags(cmd)) - set(rec[tool]["flags"])
        assert not bad, f"{tool}: {sorted(bad)} not in the recorded flags"
    for role in ("prefill", "decode"):
        assert keys(trtllm_pd_options(pd, role)) <= set(rec["trtllm"]["yaml_keys"])
    assert keys(trtllm_disagg_config(pd)) <= set(rec["trtllm_disagg"]["yaml_keys"])


def test_vllm_roles_and_proxy(pd):
    pre, dec = vllm_pd_serve(pd.prefill[1], "prefill"), vllm_pd_serve(pd.decode[0], "decode")
    assert '"kv_role":"kv_producer"' in value(pre, "--kv-transfer-config")
    assert '"kv_role":"kv_consumer"' in value(dec, "--kv-transfer-config")
    assert value(pre, "--tensor-parallel-size") == "2" and value(dec, "--tensor-parallel-size") == "1"
    assert value(pre, "--port") == str(SERVER_PORT + 1)
    proxy = vllm_proxy(pd)
    i, j = proxy.index("--prefiller-ports"), proxy.index("--decoder-hosts")
    assert proxy[i + 1:j] == [str(s.port) for s in pd.prefill]
    assert proxy[proxy.index("--decoder-ports") + 1:] == [str(s.port) for s in pd.decode]
    assert len({nixl_side_channel_port(s) for s in pd.prefill + pd.decode}) == 5


def test_sglang_modes_and_router(pd):
    pre, dec = sglang_pd_launch(pd.prefill[2], "prefill"), sglang_pd_launch(pd.decode[1], "decode")
    assert value(pre, "--disaggregation-mode") == "prefill" and value(dec, "--disaggregation-mode") == "decode"
    assert value(pre, "--tp-size") == "2" and value(dec, "--tp-size") == "1"
    assert "--disaggregation-bootstrap-port" not in dec
    router = sglang_router(pd)
    assert router.count("--prefill") == 3 and router.count("--decode") == 2
    k = router.index("--prefill")
    assert router[k + 1:k + 3] == [f"http://localhost:{SERVER_PORT}", str(sglang_bootstrap_port(pd.prefill[0]))]
    assert value(router, "--port") == str(pd.router_port)


def test_trtllm_options_and_disagg_config(pd):
    ctx, gen = trtllm_pd_options(pd, "prefill"), trtllm_pd_options(pd, "decode")
    assert ctx["tensor_parallel_size"] == 2 and gen["tensor_parallel_size"] == 1
    assert ctx["disable_overlap_scheduler"] is True and "disable_overlap_scheduler" not in gen
    assert ctx["cache_transceiver_config"]["max_tokens_in_buffer"] == 4321
    cfg = trtllm_disagg_config(pd)
    assert cfg["context_servers"]["num_instances"] == len(cfg["context_servers"]["urls"]) == 3
    assert cfg["generation_servers"]["urls"] == [f"localhost:{s.port}" for s in pd.decode]
    assert cfg["port"] == pd.router_port


def test_colocated_row_and_too_many_servers_are_one_error():
    s = scenario_from_dict(PLAN)
    row = pd_row()
    with pytest.raises(InputError, match="--emit"):
        pd_plan(s, row | {"deployment": row["deployment"] | {"kind": "aggregated"}}, 100)
    with pytest.raises(InputError, match=f"at most {MAX_SERVERS} servers"):
        pd_plan(s, pd_row(x=MAX_SERVERS, y=1), 100)
