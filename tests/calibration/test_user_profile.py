"""One's own calibration folder into a complete profile: synthetic CSVs with a known efficiency."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from simulator.calibration import user_profile
from simulator.calibration.io import open_log
from simulator.catalog.gpus import load_gpu, load_gpu_file
from simulator.cli import main as cli_main
from simulator.perf.roofline import evaluate

#: Compute-bound GEMMs on an H100 (arithmetic intensity far above its ~295 FLOP/byte ridge).
SHAPES = [(m, k, n) for k, n in ((4096, 4096), (4096, 14336)) for m in (512, 1024, 2048, 4096)]
EFF = 0.4


def write_folder(out: Path, device: dict, eff: float = EFF, gpu: str = "h100-sxm") -> None:
    """A calibration folder whose GEMMs ran at ``eff`` of ``gpu``'s datasheet bf16 peak."""
    peak = load_gpu(gpu).peak_flops("bf16")
    log = open_log(out, "gemm")
    for m, k, n in SHAPES:
        flops = 2.0 * m * k * n
        log.append({"op": "matmul", "dtype": "bf16", "m": m, "k": k, "n": n, "flops": flops,
                    "bytes": 2.0 * (m * k + k * n + m * n), "event_s": flops / peak / eff, "repeats": 10})
    launch = open_log(out, "launch")
    launch.append({"op": "empty", "mode": "eager", "launches": 100, "event_s": 3e-6, "kernel_s": 1.5e-6})
    launch.append({"op": "empty", "mode": "graph", "launches": 100, "event_s": 1.2e-6, "kernel_s": 1.5e-6})
    (out / "meta.json").write_text(json.dumps({"gpu": "my-gpu", "device": device, "started_utc": "2026-12-07T00:00:00Z",
                                               "versions": {"torch": "synthetic"}}))


H100 = {"name": "NVIDIA H100 80GB HBM3", "kind": "gpu", "memory_bytes": 85017493504}


def test_profile_reproduces_the_measured_efficiency(tmp_path):
    write_folder(tmp_path, H100)
    path = user_profile.write(tmp_path, "my-gpu", user_profile.Datasheet())
    g = load_gpu_file(path)
    assert g.name == "my-gpu" and g.efficiency.status == "calibrated"
    assert g.dense_tflops["bf16"].value == load_gpu("h100-sxm").dense_tflops["bf16"].value
    assert "copied from catalog profile h100-sxm" in g.dense_tflops["bf16"].source
    curve = g.efficiency.curves["gemm_bf16"]
    for m, k, n in SHAPES:
        assert evaluate(curve, math.log2(m), math.log2(k * n)) == pytest.approx(EFF, abs=0.01)
    assert g.efficiency.launch_overhead_s == pytest.approx(3e-6)
    assert g.efficiency.graph_launch_overhead_s == pytest.approx(1.2e-6)
    # kinds not measured here keep the catalog's curves, and the profile says so
    assert g.efficiency.transferred_from == "h100-sxm"
    assert "kept from h100-sxm" in g.efficiency.source
    head = path.read_text().splitlines()
    assert any(line.startswith("#   gemm_bf16: 8 points, held-out error median") for line in head)
    report = json.loads((tmp_path / "my-gpu.fit.json").read_text())
    assert report["base"] == "h100-sxm" and report["report"]["gemm_bf16"]["points"] == 8


def test_datasheet_override_rescales_the_fitted_efficiency(tmp_path):
    """Efficiency is a fraction of the profile's own peak: halve the peak and it doubles."""
    write_folder(tmp_path, H100)
    path = user_profile.write(tmp_path, "my-gpu", user_profile.Datasheet(bf16_tflops=494.5, memory_gb=40))
    g = load_gpu_file(path)
    assert g.dense_tflops["bf16"].value == 494.5 and "--bf16-tflops" in g.dense_tflops["bf16"].source
    assert g.memory_gb.value == 40
    m, k, n = SHAPES[3]
    assert evaluate(g.efficiency.curves["gemm_bf16"], math.log2(m), math.log2(k * n)) == pytest.approx(2 * EFF,
                                                                                                        abs=0.02)


def test_nearest_catalog_gpu_by_name_then_kind_vendor_and_memory():
    assert user_profile.nearest_catalog_gpu(H100) == "h100-sxm"
    name = user_profile.nearest_catalog_gpu({"name": "NVIDIA Some Card", "kind": "gpu", "memory_bytes": 24 * 2 ** 30})
    g = load_gpu(name)
    assert g.vendor == "NVIDIA" and g.kind == "gpu" and 20 <= g.memory_gb.value <= 32
    assert load_gpu(user_profile.nearest_catalog_gpu({"name": "x86_64", "kind": "cpu"})).kind == "cpu"


def test_refit_command_keeps_recorded_datasheet_choices(tmp_path, capsys):
    write_folder(tmp_path, H100)
    assert cli_main(["calibrate", "fit", str(tmp_path), "--like", "h200-sxm", "--bandwidth-tbps", "4.0"]) == 0
    assert "wrote" in capsys.readouterr().out
    first = yaml.safe_load((tmp_path / "my-gpu.yaml").read_text())
    assert first["memory_gb"]["value"] == load_gpu("h200-sxm").memory_gb.value
    assert first["memory_bandwidth_tbps"]["value"] == 4.0
    # a plain refit repeats --like and --bandwidth-tbps from my-gpu.fit.json
    assert cli_main(["calibrate", "fit", str(tmp_path)]) == 0
    again = yaml.safe_load((tmp_path / "my-gpu.yaml").read_text())
    assert again["memory_bandwidth_tbps"] == first["memory_bandwidth_tbps"]
    assert again["efficiency"]["curves"] == first["efficiency"]["curves"]


@pytest.mark.parametrize("argv, field", [
    (["--like", "no-such-gpu"], "gpu"),
    (["--bf16-tflops", "-3"], "--bf16-tflops"),
    (["--name", "Bad Name"], "--name"),
])
def test_bad_refit_input_is_one_line(tmp_path, capsys, argv, field):
    write_folder(tmp_path, H100)
    assert cli_main(["calibrate", "fit", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err


def test_folder_without_csvs_is_refused(tmp_path, capsys):
    assert cli_main(["calibrate", "fit", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no calibration CSVs" in err
