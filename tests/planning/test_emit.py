"""``servesim plan --emit DIR``: the round trip plan -> launch scripts -> benchmark scripts."""
from __future__ import annotations

import json
import shlex

import yaml

from simulator.cli import main
from simulator.planning.launch import recorded_flags

ONE_LINE = ["plan", "--model", "llama-3.1-8b", "--rate", "10", "--isl", "300", "--osl", "40", "--ttft", "0.7",
            "--tpot", "0.04", "--engine", "vllm", "--gpus", "h100-sxm", "--tp", "1,2", "--pp", "1", "--dtypes", "bf16",
            "--batch-sizes", "256", "--batched-tokens", "8192", "--requests", "200", "--rel-tol", "0.1",
            "--workers", "1", "--no-progress"]


def _command(path) -> list[str]:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith(("#", "set "))]
    return shlex.split(" ".join(ln.rstrip("\\") for ln in lines))


def test_emit_writes_the_best_plan(tmp_path, capsys):
    out = tmp_path / "deploy"
    assert main([*ONE_LINE, "--json", "--emit", str(out)]) == 0
    res = json.loads(capsys.readouterr().out)
    best = res["plans"][0]
    names = {p.name for p in out.iterdir()}
    assert names == {"launch_vllm.sh", "launch_sglang.sh", "launch_trtllm.sh", "trtllm_extra_options.yaml",
                     "bench_vllm.sh", "bench_aiperf.sh", "plan.json"}
    rec = recorded_flags()
    for script, tool in (("launch_vllm.sh", "vllm"), ("launch_sglang.sh", "sglang"), ("launch_trtllm.sh", "trtllm"),
                         ("bench_vllm.sh", "vllm_bench"), ("bench_aiperf.sh", "aiperf")):
        cmd = _command(out / script)
        assert " ".join(cmd).startswith(rec[tool]["command"])
        assert {c for c in cmd if c.startswith("--")} <= set(rec[tool]["flags"]), script
    vllm = _command(out / "launch_vllm.sh")
    assert vllm[vllm.index("--tensor-parallel-size") + 1] == str(best["deployment"]["tp"])
    bench = _command(out / "bench_vllm.sh")
    assert float(bench[bench.index("--request-rate") + 1]) == best["operating_rate_per_replica"]
    assert bench[bench.index("--random-input-len") + 1] == "300"
    opts = yaml.safe_load((out / "trtllm_extra_options.yaml").read_text())
    assert opts["max_batch_size"] == 256 and opts["tensor_parallel_size"] == best["deployment"]["tp"]
    assert json.loads((out / "plan.json").read_text())["plan"]["candidate"] == best["candidate"]


def test_emit_into_a_file_is_one_error(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    assert main([*ONE_LINE, "--emit", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("servesim: error: --emit:") and err.count("\n") == 1


def test_emit_after_a_mixed_pool_winner_names_the_colocated_plan(tmp_path, capsys):
    # L4 prefill + A100 decode wins (tests/planning/test_mixed.py); launch settings cover colocated replicas
    out = tmp_path / "deploy"
    args = ["plan", "--model", "llama-3.1-8b", "--rate", "8", "--isl", "4000", "--osl", "200", "--ttft", "2",
            "--tpot", "0.04", "--gpus", "l4,a100-sxm-80gb", "--tp", "1", "--pp", "1", "--dtypes", "bf16",
            "--batch-sizes", "64", "--batched-tokens", "8192", "--workers", "1", "--no-progress", "--json"]
    assert main([*args, "--emit", str(out)]) == 0
    cap = capsys.readouterr()
    res = json.loads(cap.out)
    assert res["plans"][0]["layout"] == "disaggregated"
    rank, colocated = next((i, r) for i, r in enumerate(res["plans"], 1) if r["layout"] == "aggregated")
    assert f"plan #{rank}, {colocated['candidate']}, the best colocated plan" in cap.err
    assert res["plans"][0]["candidate"] in cap.err
    assert json.loads((out / "plan.json").read_text())["plan"]["candidate"] == colocated["candidate"]
