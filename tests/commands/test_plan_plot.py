"""``servesim plan --plot``: a PNG when Altair and vl-convert are installed, else one line saying why."""
from __future__ import annotations

import sys

import pytest

from simulator.cli import main
from simulator.commands.plan_plot import plot_available, write_plot

from ..planning.test_interactivity import RES

LINE = ["plan", "--model", "llama-3.1-8b", "--rate", "10", "--isl", "300", "--osl", "40", "--ttft", "0.7",
        "--tpot", "0.04", "--gpus", "h100-sxm", "--tp", "1,2", "--pp", "1", "--dtypes", "bf16",
        "--batch-sizes", "256", "--batched-tokens", "8192", "--requests", "200", "--rel-tol", "0.1",
        "--workers", "1", "--no-progress", "--exhaustive"]


def test_without_vl_convert_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vl_convert", None)          # import fails
    out = tmp_path / "p.png"
    msg = write_plot(RES, str(out))
    assert msg.startswith("--plot needs Altair and vl-convert") and "\n" not in msg and not out.exists()


@pytest.mark.skipif(plot_available() is not None, reason="Altair and vl-convert not installed")
def test_plot_writes_a_png(tmp_path, capsys):
    out = tmp_path / "front.png"
    assert main([*LINE, "--plot", str(out)]) == 0
    assert f"chart written to {out}" in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_output_has_the_front(capsys):
    assert main(LINE) == 0
    text = capsys.readouterr().out
    assert "throughput vs interactivity front" in text and "TPOT SLO = 25.0 tokens/s per user" in text
