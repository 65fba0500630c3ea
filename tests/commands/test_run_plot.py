"""``servesim run --concurrency/--rate ... --plot``: the latency-vs-throughput chart of a sweep."""
from __future__ import annotations

import importlib.util
import json

import pytest

from simulator.cli import main
from simulator.commands.run_plot import chart, sweep_points

SMALL = ["--set", "workload.requests=60", "--no-progress"]


def test_points_are_the_summaries_values(capsys):
    assert main(["run", "--concurrency", "1,8", "--json", *SMALL]) == 0
    shown = json.loads(capsys.readouterr().out)
    done = [(p["concurrency"], p) for p in shown]
    rows = sweep_points("concurrency", done, "p99")
    assert len(rows) == 2 * 2 * 2                        # points x (TTFT, TPOT) x (mean, p99)
    for name, s in done:
        for metric, key in (("TTFT", "ttft_s"), ("TPOT", "tpot_s")):
            for stat in ("mean", "p99"):
                row = next(r for r in rows if r["concurrency"] == name and r["metric"] == metric
                           and r["statistic"] == stat)
                assert row["ms"] == pytest.approx(s[key][stat] * 1e3)
                assert row["output_tokens_per_s"] == s["throughput_output_tokens_per_s"]
    # more clients: more throughput, and no lower mean TTFT (a closed loop queues)
    t = {r["concurrency"]: r for r in rows if r["metric"] == "TTFT" and r["statistic"] == "mean"}
    assert t["8"]["output_tokens_per_s"] > t["1"]["output_tokens_per_s"] and t["8"]["ms"] >= t["1"]["ms"]
    spec = chart("concurrency", rows, "t").to_dict()
    assert spec["facet"]["column"]["field"] == "metric"


@pytest.mark.skipif(importlib.util.find_spec("vl_convert") is None, reason="needs vl-convert-python (app extra)")
def test_rate_sweep_writes_a_png(tmp_path, capsys):
    out = tmp_path / "sweep.png"
    assert main(["run", "--rate", "2,6", "--plot", str(out), *SMALL]) == 0
    assert f"chart written to {out}" in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_a_sweep_is_one_line(tmp_path, capsys):
    assert main(["run", "--plot", str(tmp_path / "x.png"), *SMALL]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--plot" in err and "--concurrency" in err
