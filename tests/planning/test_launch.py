"""Launch and benchmark commands: every flag is one the engine documents (recorded list), and each
value is the plan's."""
from __future__ import annotations

import dataclasses
import math

import pytest

from simulator.config.scenario import PrefillWait, Speculative
from simulator.errors import InputError
from simulator.planning.launch import (BenchSpec, LaunchPlan, aiperf, recorded_flags, sglang_launch, trtllm_options,
                                       trtllm_serve, vllm_bench, vllm_serve)

BASE = LaunchPlan(model_id="meta-llama/Llama-3.1-70B", gpu="h100-sxm", tp=4, pp=2, replicas=3, weight_dtype="fp8",
                  kv_dtype="fp8", max_batch_size=128, max_batched_tokens=4096, memory_fraction=0.85,
                  chunked_prefill=True, prefix_caching=True)
VARIANTS = [
    BASE,
    dataclasses.replace(BASE, weight_dtype="bf16", kv_dtype="bf16", chunked_prefill=False, prefix_caching=False),
    dataclasses.replace(BASE, speculative=Speculative(method="eagle", k=3)),
    dataclasses.replace(BASE, speculative=Speculative(method="ngram", k=5)),
    dataclasses.replace(BASE, speculative=Speculative(method="draft_model", draft_model="llama-3.2-1b", k=4),
                        draft_id="meta-llama/Llama-3.2-1B"),
    dataclasses.replace(BASE, expert_parallel=8, attention_dp=True),
]
BENCH = BenchSpec(isl_mean=2000, isl_std=0, osl_mean=500, osl_std=0, rate=0.75, num_prompts=450,
                  ttft_ms=2000.0, tpot_ms=50.0)


def flags(cmd: list[str]) -> list[str]:
    return [c for c in cmd if c.startswith("--")]


def value(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= keys(v, prefix + k + ".")
    return out


@pytest.mark.parametrize("lp", VARIANTS, ids=lambda lp: f"{lp.weight_dtype}-{lp.speculative and lp.speculative.method}"
                         f"-ep{lp.expert_parallel}")
def test_every_flag_is_recorded_as_valid(lp):
    rec = recorded_flags()
    for tool, cmd in (("vllm", vllm_serve(lp)), ("sglang", sglang_launch(lp)), ("trtllm", trtllm_serve(lp)),
                      ("vllm_bench", vllm_bench(lp, BENCH)), ("aiperf", aiperf(lp, BENCH))):
        assert " ".join(cmd).startswith(rec[tool]["command"])
        bad = set(flags(cmd)) - set(rec[tool]["flags"])
        assert not bad, f"{tool}: {sorted(bad)} not in the recorded flags"
        assert len(flags(cmd)) == len(set(flags(cmd))), f"{tool}: a flag given twice"
    assert keys(trtllm_options(lp)) <= set(rec["trtllm"]["yaml_keys"])


def test_recorded_lists_name_version_and_source():
    for tool, entry in recorded_flags().items():
        assert entry["version"] and entry["source"] and entry["flags"], tool
        assert all(f.startswith("--") for f in entry["flags"]), tool


def test_values_are_the_plans():
    v, s, t, o = vllm_serve(BASE), sglang_launch(BASE), trtllm_serve(BASE), trtllm_options(BASE)
    assert v[2] == s[s.index("--model-path") + 1] == t[1] == BASE.model_id
    assert value(v, "--tensor-parallel-size") == value(s, "--tp-size") == value(t, "--tp_size") == "4"
    assert value(v, "--pipeline-parallel-size") == value(s, "--pp-size") == value(t, "--pp_size") == "2"
    assert value(v, "--max-num-seqs") == value(s, "--max-running-requests") == value(t, "--max_batch_size") == "128"
    assert value(v, "--max-num-batched-tokens") == value(s, "--chunked-prefill-size") == "4096"
    assert value(v, "--kv-cache-dtype") == "fp8" and value(s, "--kv-cache-dtype") == "fp8_e4m3"
    assert value(v, "--quantization") == value(s, "--quantization") == "fp8"
    assert "--enable-prefix-caching" in v and "--disable-radix-cache" not in s
    assert o["tensor_parallel_size"] == 4 and o["max_num_tokens"] == 4096
    assert o["kv_cache_config"] == {"free_gpu_memory_fraction": 0.85, "dtype": "fp8", "enable_block_reuse": True}


def test_switches_off():
    lp = VARIANTS[1]
    v, s, o = vllm_serve(lp), sglang_launch(lp), trtllm_options(lp)
    assert "--no-enable-chunked-prefill" in v and "--no-enable-prefix-caching" in v and "--quantization" not in v
    assert value(s, "--chunked-prefill-size") == "-1" and "--disable-radix-cache" in s
    assert o["enable_chunked_prefill"] is False and o["kv_cache_config"]["enable_block_reuse"] is False


def test_speculative_settings_carry_k_and_draft():
    lp = VARIANTS[4]
    assert '"num_speculative_tokens":4' in value(vllm_serve(lp), "--speculative-config")
    assert '"model":"meta-llama/Llama-3.2-1B"' in value(vllm_serve(lp), "--speculative-config")
    s = sglang_launch(lp)
    assert value(s, "--speculative-algorithm") == "STANDALONE" and value(s, "--speculative-num-draft-tokens") == "5"
    spec = trtllm_options(lp)["speculative_config"]
    assert spec == {"decoding_type": "DraftTarget", "max_draft_len": 4, "speculative_model_dir": "meta-llama/Llama-3.2-1B"}


def test_medusa_on_sglang_is_a_clear_error():
    with pytest.raises(InputError, match="deployment.speculative.method"):
        sglang_launch(dataclasses.replace(BASE, speculative=Speculative(method="medusa", k=3)))


def test_bench_commands_carry_load_and_slo():
    b = vllm_bench(BASE, BENCH)
    assert value(b, "--random-input-len") == "2000" and value(b, "--random-output-len") == "500"
    assert value(b, "--request-rate") == "0.75" and value(b, "--num-prompts") == "450"
    assert b[b.index("--goodput") + 1:b.index("--goodput") + 3] == ["ttft:2000", "tpot:50"]
    a = aiperf(BASE, BENCH)
    assert value(a, "--synthetic-input-tokens-mean") == "2000" and value(a, "--output-tokens-stddev") == "0"


def test_range_ratio_matches_the_planned_spread():
    """A uniform on mean*(1 +- r) has std r*mean/sqrt(3): the ratio written reproduces the planned std."""
    spec = dataclasses.replace(BENCH, isl_std=300)
    r = float(value(vllm_bench(BASE, spec), "--random-range-ratio"))
    assert math.isclose(r * 2000 / math.sqrt(3), 300, rel_tol=0.01)


def test_batching_rules_reach_the_engine_that_has_a_flag_for_them():
    mixed = dataclasses.replace(BASE, mixed_batches=True)
    assert "--enable-mixed-chunk" in sglang_launch(mixed) and "--enable-mixed-chunk" not in sglang_launch(BASE)
    assert "--enable-mixed-chunk" not in vllm_serve(mixed)          # vLLM always mixes
    wait = dataclasses.replace(BASE, prefill_wait=PrefillWait(steps=20, tokens_ratio=0.9))
    o = trtllm_options(wait)
    assert o["batch_wait_timeout_iters"] == 20 and o["batch_wait_max_tokens_ratio"] == 0.9
    assert keys(o) <= set(recorded_flags()["trtllm"]["yaml_keys"])
    assert "--enable-mixed-chunk" in recorded_flags()["sglang"]["flags"]
    polled = sglang_launch(dataclasses.replace(BASE, recv_interval=30))
    assert value(polled, "--scheduler-recv-interval") == "30" and "--scheduler-recv-interval" not in sglang_launch(BASE)
    assert "--scheduler-recv-interval" in recorded_flags()["sglang"]["flags"]


@pytest.mark.parametrize("emit", [vllm_serve, trtllm_options])
def test_polling_on_an_engine_without_it_is_a_clear_error(emit):
    with pytest.raises(InputError, match="deployment.batching.recv_interval"):
        emit(dataclasses.replace(BASE, recv_interval=30))
    emit(dataclasses.replace(BASE, recv_interval=1))   # every step: what every engine does


@pytest.mark.parametrize("emit", [vllm_serve, sglang_launch])
def test_batch_waiting_on_an_engine_without_it_is_a_clear_error(emit):
    with pytest.raises(InputError, match="deployment.batching.prefill_wait"):
        emit(dataclasses.replace(BASE, prefill_wait=PrefillWait(steps=20, tokens_ratio=0.9)))


@pytest.mark.parametrize("emit", [vllm_serve, trtllm_options])
def test_separate_prefill_steps_on_an_engine_that_always_mixes_is_a_clear_error(emit):
    with pytest.raises(InputError, match="deployment.batching.mixed_batches"):
        emit(dataclasses.replace(BASE, mixed_batches=False))
