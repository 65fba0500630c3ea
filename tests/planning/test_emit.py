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
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith(("#", "set ", "export ", "cd "))]
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


def test_emit_of_a_disaggregated_winner_starts_its_pools(tmp_path, capsys):
    # a long-prompt case a disaggregated plan wins; its pools are emitted, not a colocated plan
    out = tmp_path / "deploy"
    args = ["plan", "--model", "llama-3.1-8b", "--rate", "8", "--isl", "4000", "--osl", "200", "--ttft", "2",
            "--tpot", "0.04", "--gpus", "l4,a100-sxm-80gb", "--tp", "1", "--pp", "1", "--dtypes", "bf16",
            "--batch-sizes", "64", "--batched-tokens", "8192", "--workers", "1", "--no-progress", "--json"]
    assert main([*args, "--emit", str(out)]) == 0
    cap = capsys.readouterr()
    best = json.loads(cap.out)["plans"][0]
    assert best["layout"] == "disaggregated"
    assert f"plan #1, {best['candidate']} (disaggregated)" in cap.err
    dep = best["deployment"]
    for role, flag in (("prefill", "--tensor-parallel-size"), ("decode", "--tensor-parallel-size")):
        scripts = sorted((out / "vllm").glob(f"{role}_*.sh"))
        assert len(scripts) == dep[role]["replicas"]
        assert all(_command(p)[_command(p).index(flag) + 1] == str(dep[role]["tp"]) for p in scripts)
    assert len(list((out / "sglang").glob("prefill_*.sh"))) == dep["prefill"]["replicas"]
    cfg = yaml.safe_load((out / "trtllm" / "disagg_config.yaml").read_text())
    assert cfg["generation_servers"]["num_instances"] == dep["decode"]["replicas"]
    assert f"{dep['link_gbps']:g} GB/s" in (out / "README.md").read_text()
    assert json.loads((out / "plan.json").read_text())["plan"]["candidate"] == best["candidate"]
