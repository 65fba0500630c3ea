"""Entry-point behaviour that needs no GPU: missing torch, bad options, GPU naming."""
from __future__ import annotations

import importlib.util

import pytest

from simulator.calibration import suite
from simulator.calibration.meta import profile_name_for
from simulator.errors import InputError


def test_without_torch_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    assert suite.main(["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "torch is not installed: pip install 'servesim[calibrate]'"


def test_cuda_without_gpu_suggests_cpu_quick(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert suite.main(["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--device cpu --quick" in err


def test_unknown_kind_suggests_close_names(capsys, tmp_path):
    assert suite.main(["--out", str(tmp_path), "--only", "gem"]) == 2
    err = capsys.readouterr().err
    assert "--only" in err and "gemm" in err and len(err.strip().splitlines()) == 1


def test_missing_out_is_one_line(capsys):
    assert suite.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert "--out" in err and len(err.splitlines()) == 1


def test_select_kinds_keeps_suite_order_and_aliases():
    assert suite.select_kinds("whole_model,attention") == ["attention_prefill", "attention_decode", "whole_model"]
    assert suite.select_kinds(None) == list(suite.KINDS)


def test_gpu_names_map_to_profiles():
    assert profile_name_for("NVIDIA H100 80GB HBM3") == "h100-sxm"
    assert profile_name_for("NVIDIA H200") == "h200-sxm"
    assert profile_name_for("NVIDIA H100 PCIe") is None
    assert profile_name_for("NVIDIA A10G") is None


def test_unknown_gpu_needs_name():
    with pytest.raises(InputError, match="--name my-gpu"):
        suite.resolve_name("cuda", "NVIDIA A10G", None)
    assert suite.resolve_name("cuda", "NVIDIA A10G", "a10g") == "a10g"
    assert suite.resolve_name("cpu", "cpu", None) == "cpu"
    with pytest.raises(InputError, match="--name"):
        suite.resolve_name("cuda", "NVIDIA A10G", "My GPU")
