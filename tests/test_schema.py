"""Every schema refuses NaN/inf floats and booleans where numbers belong (scenarios, profiles, prices)."""
from __future__ import annotations

import pytest

from simulator.cli import main


def _err(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("key,value", [
    ("deployment.service_cache.semantic.lookup_s", ".inf"),
    ("deployment.speculative.ngram_cost_s", ".inf"),
    ("deployment.batching.timeout_s", ".nan"),
    ("slo.ttft_s", ".inf"),
    ("deployment.moe.skew", ".inf"),
])
def test_scenario_floats_refuse_inf_and_nan(key, value, capsys):
    extra = {"deployment.service_cache.semantic.lookup_s": ["deployment.service_cache.semantic.hit_rate=0.5"],
             "deployment.speculative.ngram_cost_s": ["deployment.speculative.method=ngram"]}.get(key, [])
    argv = ["run", "--set", f"{key}={value}", "--set", "workload.requests=5"]
    for e in extra:
        argv += ["--set", e]
    err = _err(argv, capsys)
    assert key in err and "finite" in err


@pytest.mark.parametrize("key", ["deployment.tp", "deployment.replicas", "workload.requests", "seed",
                                 "deployment.kv_cache.block_size"])
def test_booleans_are_not_numbers(key, capsys):
    err = _err(["run", "--set", f"{key}=true", "--set", "workload.requests=5"] if key != "workload.requests"
               else ["run", "--set", f"{key}=true"], capsys)
    assert f"{key}: got True; give a number, not true/false" in err


def test_gpu_profile_refuses_inf(tmp_path, capsys):
    from simulator.paths import hwprofiles_dir
    text = (hwprofiles_dir() / "h100-sxm.yaml").read_text()
    assert "memory_gb:\n  value: 80\n" in text
    p = tmp_path / "h100-sxm.yaml"
    p.write_text(text.replace("memory_gb:\n  value: 80\n", "memory_gb:\n  value: .inf\n"))
    err = _err(["run", "--set", f"deployment.gpu={p}", "--set", "workload.requests=5"], capsys)
    assert "memory_gb" in err and "finite" in err


def test_price_file_refuses_inf(tmp_path, capsys):
    p = tmp_path / "prices.yaml"
    p.write_text("prices:\n  h100-sxm:\n    - {provider: x, offer: y, kind: on-demand, usd_per_gpu_hour: .inf, "
                 "source: s, date: 2025-01-01}\n")
    err = _err(["cost", "--prices", str(p), "--rate-per-replica", "2"], capsys)
    assert "usd_per_gpu_hour" in err and "finite" in err


@pytest.mark.parametrize("argv,flag", [
    (["estimate", "--gpu", "h100-sxm", "--op", "all-reduce", "--bytes", "nan", "--gpus", "8"], "--bytes"),
    (["cost", "--rate-per-replica", "inf"], "--rate-per-replica"),
    (["cost", "--rate-per-replica", "nan"], "--rate-per-replica"),
    (["plan", "--target-rate", "inf"], "--target-rate"),
    (["cost", "--kwh-price=-inf"], "--kwh-price"),
])
def test_cli_float_flags_refuse_non_finite(argv, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and flag in err and "finite" in err and len(err.strip().splitlines()) == 1


def test_cost_volume_overflow_and_absurd_rate(capsys):
    err = _err(["cost", "--volume", "1e400", "--rate-per-replica", "1"], capsys)
    assert "--volume" in err
    err = _err(["cost", "--rate-per-replica", "1e-300"], capsys)
    assert "more than 1,000,000 replicas" in err


@pytest.mark.parametrize("argv", [["run", "--bogus"], ["run", "--replications", "x"], ["nosuchcommand"],
                                  ["estimate"]])
def test_argparse_errors_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "--help" in err


@pytest.mark.parametrize("key,value,needle", [
    ("deployment.cp", "327452393619490", "less than or equal to 65536"),
    ("deployment.tp", "100000", "less than or equal to 65536"),
    ("seed", "100000000000000000000000", "seed: got 100000000000000000000000; must be at most 2^53"),
    ("deployment.kv_cache.num_blocks", str(2**70), "num_blocks"),
])
def test_counts_beyond_what_the_engine_holds_are_refused(key, value, needle, capsys):
    assert needle in _err(["run", "--set", f"{key}={value}", "--set", "workload.requests=5"], capsys)
