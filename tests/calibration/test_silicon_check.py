"""calibration/silicon_check.py and offline_check.py: which measured rows are kept, how each becomes a
scenario, and the throughput arithmetic, on small tables written here (no aiconfigurator-core needed)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from calibration import offline_check, silicon_check as sc
from calibration.benchmark_setup import Protocol
from simulator.config.loader import scenario_from_dict
from simulator.engine.simulate import simulate

P1000 = Protocol(1000, 0)   # vllm bench serve's default count, fixed lengths
COLS = ["id", "silicon_data_source", "backend", "backend_version", "model_path", "system", "precision", "mode",
        "isl", "osl", "gemm_quant_mode", "moe_quant_mode", "batch_size", "tp_size", "pp_size",
        "attention_dp_size", "moe_tp_size", "moe_ep_size", "silicon_ttft_ms", "silicon_tpot_ms"]


def _row(**kw: object) -> dict:
    base = {"id": "r", "silicon_data_source": "x", "backend": "vllm", "backend_version": "0.12.0",
            "model_path": "meta-llama/Llama-3.1-8B-Instruct", "system": "h100_sxm", "precision": "fp8", "mode": "agg",
            "isl": 1000, "osl": 100, "gemm_quant_mode": "fp8", "moe_quant_mode": None, "batch_size": 16,
            "tp_size": 1, "pp_size": 1, "attention_dp_size": 1, "moe_tp_size": 1, "moe_ep_size": 1,
            "silicon_ttft_ms": 100.0, "silicon_tpot_ms": 10.0}
    return {**base, **kw}


def test_rows_outside_what_servesim_models_are_left_out() -> None:
    table = pd.DataFrame([
        _row(id="kept"),
        _row(id="disagg", mode="disagg"),
        _row(id="unknown model", model_path="someone/Unknown-7B"),
        _row(id="unknown gpu", system="b60"),
        _row(id="two nodes", tp_size=16),
        _row(id="pipeline", pp_size=2),
        _row(id="attention dp", attention_dp_size=4),
        _row(id="unlabelled attention dp", tp_size=4, batch_size=16,
             silicon_data_source="db-dump; config_id=1; silicon_concurrency=64; measured=2026"),
        _row(id="replicas", tp_size=2, batch_size=16,
             silicon_data_source="db-dump; config_id=1; silicon_concurrency=128; measured=2026"),
        _row(id="nvfp4", gemm_quant_mode="nvfp4"),
        _row(id="mxfp4 experts", model_path="openai/gpt-oss-120b", moe_quant_mode="w4a16_mxfp4"),
        _row(id="block fp8", gemm_quant_mode="fp8_block", moe_quant_mode="fp8_block",
             model_path="deepseek-ai/DeepSeek-V3", tp_size=8, moe_ep_size=8),
    ], columns=COLS)
    cases = sc.cases(table)
    assert [c.id for c in cases] == ["kept", "replicas", "block fp8"]
    assert cases[1].concurrency == 16            # 8 replicas of 16 clients: one replica's closed loop
    dsv3 = cases[2]
    assert (dsv3.model, dsv3.weight_dtype, dsv3.ep) == ("deepseek-v3", "fp8", 8)
    assert sc.scenario_of(dsv3, P1000)["deployment"]["moe"] == {"expert_parallel": 8}
    assert [c.id for c in sc.cases(table, ["trtllm"])] == []


def test_a_repeated_measurement_counts_once() -> None:
    """The sample repeats some measurements under a second id and checkpoint name (another source file)."""
    table = pd.DataFrame([
        _row(id="a", model_path="deepseek-ai/DeepSeek-V3", gemm_quant_mode="fp8_block", moe_quant_mode="fp8_block",
             tp_size=8, backend_version="1.2.0rc6.post2"),
        _row(id="b", model_path="deepseek-ai/DeepSeek-R1", gemm_quant_mode="fp8_block", moe_quant_mode="fp8_block",
             tp_size=8, backend_version="1.2.0rc6.post2", silicon_ttft_ms=100.00000000000001),  # last digit differs
        _row(id="c", model_path="deepseek-ai/DeepSeek-R1", gemm_quant_mode="fp8_block", moe_quant_mode="fp8_block",
             tp_size=8, backend_version="1.2.0rc6.post3", silicon_tpot_ms=5.0),   # a different measurement
    ], columns=COLS)
    assert [c.id for c in sc.cases(table)] == ["a", "c"]


def test_benchmark_concurrency_reads_the_source_string() -> None:
    assert sc.benchmark_concurrency(pd.Series(_row(silicon_data_source="a; silicon_concurrency=96; b"))) == 96
    assert sc.benchmark_concurrency(pd.Series(_row())) is None
    one = pd.Series(_row(tp_size=1, batch_size=8, silicon_data_source="silicon_concurrency=8"))
    assert not sc.unlabelled_attention_dp(one)


def test_a_case_is_a_closed_loop_of_the_tools_default_prompt_count() -> None:
    c = sc.cases(pd.DataFrame([_row(batch_size=600)], columns=COLS))[0]
    s = sc.scenario_of(c, P1000)
    assert s["workload"]["arrival"] == {"process": "closed_loop", "concurrency": 600}
    assert s["workload"]["requests"] == 1200            # at least two requests per client
    assert s["workload"]["prompt_tokens"] == {"dist": "fixed", "value": 1000}
    assert s["deployment"]["engine"] == "vllm" and "batching" not in s["deployment"]
    # as aiconfigurator's generator launches vLLM 0.12.0: its template sets the batch only
    assert sc.scenario_of(c, P1000, launch="generator")["deployment"]["batching"] == {"max_batch_size": 600}


def test_host_overlap_follows_the_rows_release() -> None:
    # vLLM overlaps host work by default from 0.14 on; a row of an older release runs it in turn with the GPU
    def dep(version: str) -> dict:
        c = sc.cases(pd.DataFrame([_row(backend_version=version)], columns=COLS))[0]
        return sc.scenario_of(c, P1000)["deployment"]
    assert dep("0.12.0")["overlap_host"] is False
    assert "overlap_host" not in dep("0.19.0")
    # no release named (the sample's empty version, a nightly): the profile's own default, not the oldest
    assert "overlap_host" not in dep(float("nan")) and "overlap_host" not in dep("nightly-5b8c30d6")


def test_an_engine_without_chunked_prefill_gets_a_budget_its_prompt_fits() -> None:
    c = sc.cases(pd.DataFrame([_row(backend="trtllm", isl=20000, batch_size=8)], columns=COLS))[0]
    assert sc.scenario_of(c, P1000)["deployment"]["batching"] == {"max_batched_tokens": 20008}
    small = sc.cases(pd.DataFrame([_row(backend="trtllm", isl=1000)], columns=COLS))[0]
    assert "batching" not in sc.scenario_of(small, P1000)["deployment"]   # 8192 already fits


def test_throughput_per_gpu_is_littles_law_over_one_request() -> None:
    # 64 clients, 100 output tokens, TTFT 0.2 s and 99 x 10 ms: each request lasts 1.19 s
    assert sc.throughput_per_gpu(64, 100, 2, 200.0, 10.0) == pytest.approx(64 * 100 / 1.19 / 2)


def test_warm_up_requests_are_left_out_of_the_means() -> None:
    c = sc.cases(pd.DataFrame([_row(batch_size=4, isl=256, osl=32)], columns=COLS))[0]
    r = simulate(scenario_from_dict(sc.scenario_of(c, Protocol(16, 0)))).requests
    last = np.argsort(r.arrival, kind="stable")[12:]     # the four requests after a warm-up of twelve
    later = sc.run_case((c, Protocol(16, 12), None, "defaults"))
    assert later.error == ""
    assert later.ttft_ms == pytest.approx(float(np.mean(r.first_token[last] - r.arrival[last])) * 1e3)
    assert sc.run_case((c, Protocol(16, 16), None, "defaults")).error.startswith("no request finished")   # all left out


def test_a_simulated_case_predicts_finite_latencies() -> None:
    c = sc.cases(pd.DataFrame([_row(batch_size=4, isl=256, osl=32)], columns=COLS))[0]
    out = sc.run_case((c, Protocol(16, 0), None, "defaults"))
    assert out.error == "" and out.ttft_ms > 0 and out.tpot_ms > 0
    assert math.isfinite(sc.frame([out])["thr_pred"].iloc[0])


def test_offline_rows_become_offline_scenarios(tmp_path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("# source line\nmodel,gpu,tp,isl,osl,requests,output_tps\nllama-3.1-8b,h100-sxm,1,128,64,50,1000\n")
    t = offline_check.read_table(p)
    row = t.to_dict(orient="records")[0]
    s = offline_check.scenario_of(row, "trtllm")
    assert s["workload"]["arrival"] == {"process": "offline"} and s["workload"]["requests"] == 50
    assert s["deployment"]["weight_dtype"] == "fp8" and s["deployment"]["kv_dtype"] == "bf16"
    out = offline_check.predict((row, "trtllm", "bf16"))
    assert out["error"] == "" and out["pred_tps"] > 0


def test_offline_rows_with_layout_columns(tmp_path) -> None:
    """Optional pp / ep / weight_dtype columns: pipeline stages, experts over ep GPUs with data-parallel
    attention, the checkpoint's weight format; absent columns keep one stage, no expert layout and fp8."""
    p = tmp_path / "t.csv"
    p.write_text("model,gpu,tp,pp,ep,weight_dtype,isl,osl,requests,output_tps\n"
                 "llama-3.1-70b,rtx-pro-6000-server,1,4,1,nvfp4,128,64,20,1000\n"
                 "qwen3-30b-a3b,b200,2,1,2,nvfp4,128,64,20,1000\n")
    dense, moe = offline_check.read_table(p).to_dict(orient="records")
    s = offline_check.scenario_of(dense, "trtllm", "fp8")["deployment"]
    assert (s["tp"], s["pp"], s["weight_dtype"], s["kv_dtype"]) == (1, 4, "nvfp4", "fp8") and "moe" not in s
    m = offline_check.scenario_of(moe, "trtllm")["deployment"]
    assert m["moe"] == {"expert_parallel": 2, "attention": "dp"} and m["tp"] == 2
    assert offline_check.layout({"tp": 8, "isl": 1}) == (8, 1, 1, "fp8")
    out = offline_check.predict((dense, "trtllm", "fp8"))
    assert out["error"] == "" and out["pred_tps"] > 0


def test_published_tables_parse() -> None:
    """Both shipped tables: every row names a catalog model and GPU, and the second one's layouts are valid."""
    from simulator.catalog.gpus import load_gpu
    from simulator.catalog.models import load_model
    base = offline_check.TABLE
    more = base.with_name("trtllm-perf-overview-v1.0-more.csv")
    for path, n in ((base, 60), (more, 172)):
        t = offline_check.read_table(path)
        assert len(t) == n and (t["output_tps"] > 0).all()
        for r in t.to_dict(orient="records"):
            load_model(r["model"]), load_gpu(r["gpu"])
            tp, pp, ep, dtype = offline_check.layout(r)
            assert ep in (1, tp) and dtype in ("fp8", "nvfp4") and tp * pp <= 8


def test_decode_bound_by_hand() -> None:
    # Llama-3.1-8B fp8 on one H100: 8.03e9 weight bytes, 128 KiB of bf16 KV per token, 80 GiB of HBM at
    # 3.35 TB/s; 128-token prompts and 2048-token outputs hold 1152 tokens each on average.
    row = {"model": "llama-3.1-8b", "gpu": "h100-sxm", "tp": 1, "isl": 128, "osl": 2048}
    from simulator.catalog.models import load_model
    from simulator.perf.memory import weight_bytes_per_gpu
    w = weight_bytes_per_gpu(load_model("llama-3.1-8b"), "fp8", 1)
    free = 80 * 2**30 - w
    running = free / (32 * 8 * 128 * 2 * 2 * 1152)
    expect = running / (80 * 2**30 / 3.35e12)
    assert offline_check.decode_bound(row, "bf16") == pytest.approx(expect)
    assert 19e3 < expect < 21e3                        # below the 22,714 tokens/s TensorRT-LLM published
    assert offline_check.decode_bound(row, "fp8") == pytest.approx(2 * expect)


def test_nvfp4_on_blackwell_and_config_json_models_are_kept(tmp_path) -> None:
    import json
    name = sc.CONFIG_MODELS["MiniMaxAI/MiniMax-M2.5"][1]
    (tmp_path / name).write_text(json.dumps({
        "architectures": ["MiniMaxM2ForCausalLM"], "model_type": "minimax_m2", "hidden_size": 1024,
        "num_hidden_layers": 4, "num_attention_heads": 16, "num_key_value_heads": 4, "head_dim": 64,
        "intermediate_size": 256, "vocab_size": 32000, "num_local_experts": 16, "num_experts_per_tok": 2}))
    table = pd.DataFrame([
        _row(id="nvfp4 b200", gemm_quant_mode="nvfp4", system="b200_sxm", model_path="meta-llama/Llama-3.1-70B",
             tp_size=2),
        _row(id="nvfp4 h100", gemm_quant_mode="nvfp4"),
        _row(id="minimax", model_path="MiniMaxAI/MiniMax-M2.5", moe_quant_mode="fp8", system="h200_sxm"),
    ], columns=COLS)
    assert [c.id for c in sc.cases(table)] == ["nvfp4 b200"]            # no config folder: catalog models only
    kept = sc.cases(table, None, tmp_path)
    assert [c.id for c in kept] == ["nvfp4 b200", "minimax"]
    assert kept[0].weight_dtype == "nvfp4" and kept[0].gpu == "b200"
    assert sc.scenario_of(kept[1], Protocol(10, 0))["model"] == str(tmp_path / name)
    out = sc.run_case((kept[1], Protocol(8, 0), None, "defaults"))
    assert out.error == "" and math.isfinite(out.tpot_ms)


@pytest.mark.parametrize(("main", "flag", "named"), [(sc.main, "--csv", "model_path"),
                                                     (offline_check.main, "--table", "output_tps")])
def test_a_table_without_the_needed_columns_is_a_clear_error(tmp_path, capsys, main, flag, named) -> None:
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(bad, index=False)
    assert main([flag, str(bad)]) == 2
    err = capsys.readouterr().err
    assert "lacks" in err and named in err and err.count("\n") == 1


def test_a_row_from_the_inferencex_database_runs_its_clients_protocol() -> None:
    row = _row(batch_size=8, isl=1024, osl=1024,
               silicon_data_source="db-dump/2026-04-27; config_id=733; silicon_concurrency=8; workflow_run_id=758")
    c = sc.cases(pd.DataFrame([row], columns=COLS))[0]
    assert c.harness == "inferencex"
    s = sc.scenario_of(c, Protocol(80, 0, 0.8))
    assert s["workload"]["requests"] == 80
    # bench_serving's sample_random_requests: randint(int(0.8 L), L + 1)
    assert s["workload"]["prompt_tokens"] == {"dist": "uniform", "low": 819, "high": 1024}
    assert s["workload"]["output_tokens"] == {"dist": "uniform", "low": 819, "high": 1024}
    out = sc.run_case((c, Protocol(80, 0, 0.8), None, "defaults"))
    assert out.error == "" and math.isfinite(out.ttft_ms) and out.tpot_ms > 0
