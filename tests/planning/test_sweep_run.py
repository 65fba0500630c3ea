"""Running sweeps: results folder, error rows, resume after Ctrl-C and after a killed process."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from simulator.cli import main
from simulator.planning.executors import Task, run_task
from simulator.planning.runner import run_sweep
from simulator.planning.sweep import SweepSpec, expand

from .conftest import REPO, TINY, tiny


def starts(out: Path) -> Counter:
    """How many times each point was started, from the journal."""
    lines = (out / "journal.log").read_text().splitlines()
    return Counter(line.split()[2] for line in lines if line.split()[1] == "start")


def test_sweep_writes_one_row_per_point_with_metrics(tmp_path):
    spec = SweepSpec(base=TINY, axes={"workload.arrival.rate": [2, 20], "deployment.tp": [1, 2]})
    rep = run_sweep(spec, TINY, tmp_path / "out")
    df = pd.read_parquet(tmp_path / "out" / "results.parquet")
    keys = [p.key for p in expand(spec, TINY).points]
    assert rep.ran == 4 and rep.finished == 4 and list(df["point"]) == keys
    assert set(df.columns) >= {"workload.arrival.rate", "deployment.tp", "ttft_p99", "tpot_mean", "itl_p50",
                               "e2e_p90", "throughput_output_tokens_per_s", "goodput_requests_per_s",
                               "slo_attainment", "mfu", "mbu", "preemptions", "stable", "error"}
    assert df["error"].isna().all() and df["stable"].dtype == "boolean"
    # each point's throughput: every request finishes, so completed requests / duration
    assert (df["completed"] == 200).all()
    assert (df["throughput_requests_per_s"] == df["completed"] / df["duration_s"]).all()
    # the row equals a direct run of that point (no mix-up between points)
    p = expand(spec, TINY).points[3]
    direct = run_task(Task(p.key, p.scenario, p.axes, 0))
    row = df[df["point"] == p.key].iloc[0]
    assert row["ttft_p99"] == pytest.approx(direct["ttft_p99"]) and row["deployment.tp"] == 2
    assert (tmp_path / "out" / "points" / f"{p.key}.json").is_file()


def test_a_point_that_does_not_fit_is_a_row_with_an_error(tmp_path):
    spec = SweepSpec(base=TINY, axes={"deployment.gpu": ["h100-sxm", "l4"], "model": ["qwen3-14b"]})
    rep = run_sweep(spec, TINY, tmp_path)
    df = pd.read_parquet(tmp_path / "results.parquet").set_index("deployment.gpu")
    assert rep.failed == 1 and rep.ran == 2
    assert df.loc["l4", "error_kind"] == "does_not_fit" and "does not fit" in df.loc["l4", "error"]
    assert pd.isna(df.loc["l4", "ttft_p99"]) and pd.isna(df.loc["h100-sxm", "error"])


def test_resume_after_ctrl_c_runs_only_unfinished_points(tmp_path):
    spec = SweepSpec(base=TINY, axes={"workload.arrival.rate": [1, 2, 3, 4, 5, 6]})
    out = tmp_path / "out"

    def stop_after_three(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, TINY, out, progress=stop_after_three)
    first = pd.read_parquet(out / "results.parquet")
    assert len(first) == 3                              # flushed on the way out
    rep = run_sweep(spec, TINY, out)
    assert (rep.already_finished, rep.ran) == (3, 3)
    assert set(starts(out).values()) == {1}             # no point started twice
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 6 and df["point"].is_unique
    again = run_sweep(spec, TINY, out)
    assert again.ran == 0 and again.already_finished == 6


SLOW = {  # about 0.2-0.3 s per point, so that a kill lands in the middle of the sweep
    "base": tiny(workload={"arrival": {"process": "poisson", "rate": 5.0}, "requests": 600,
                           "prompt_tokens": {"dist": "lognormal", "median": 700, "sigma": 0.6, "max": 4096},
                           "output_tokens": {"dist": "lognormal", "median": 120, "sigma": 0.6, "max": 1024}}),
    "axes": {"workload.arrival.rate": [2, 4, 6, 8, 10, 12], "deployment.batching.max_batch_size": [64, 256]},
}


def test_resume_after_the_sweep_process_is_killed(tmp_path, write_yaml):
    sweep = write_yaml("slow.yaml", SLOW)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "simulator", "sweep", str(sweep), "--out", str(out), "--workers", "2",
           "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    points = out / "points"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if points.is_dir() and len(list(points.glob("*.json"))) >= 3:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)                 # the parent and its workers, mid-sweep
    proc.wait()
    done_before = {p.stem: (p.stat().st_mtime_ns, p.read_bytes()) for p in points.glob("*.json")}
    assert 3 <= len(done_before) < 12, "the kill should land in the middle of the sweep"
    started_before = starts(out)
    assert all(started_before[k] == 1 for k in done_before)

    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    after = starts(out)
    for k, (mtime, content) in done_before.items():     # finished points: not run again, file untouched
        assert after[k] == 1
        assert (points / f"{k}.json").stat().st_mtime_ns == mtime and (points / f"{k}.json").read_bytes() == content
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 12 and df["point"].is_unique and df["error"].isna().all()
    assert set(df["point"]) == {p.stem for p in points.glob("*.json")}


def test_cli_exit_codes_and_messages(tmp_path, write_yaml, capsys):
    empty = write_yaml("empty.yaml", {"base": TINY, "axes": {}})
    assert main(["sweep", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "axes: got {}; a sweep needs at least one axis" in capsys.readouterr().err
    empty_list = write_yaml("el.yaml", {"base": TINY, "axes": {"deployment.tp": []}})
    assert main(["sweep", str(empty_list), "--out", str(tmp_path / "o")]) == 2
    assert "axes.deployment.tp" in capsys.readouterr().err
    big = write_yaml("big.yaml", {"base": TINY, "axes": {"workload.arrival.rate": {"range": [1, 100, 1]},
                                                         "seed": {"range": [0, 200, 1]}}})
    assert main(["sweep", str(big), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than 10000 points" in err and "--yes" in err
    assert main(["sweep", str(big), "--out", str(tmp_path / "o"), "--max-points", "5"]) == 2
    bad = write_yaml("bad.yaml", {"base": TINY, "axes": {"deployment.tp": [1, 3]}})
    assert main(["sweep", str(bad), "--out", str(tmp_path / "b"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "sweep point {deployment.tp: 3}: tp: got 3" in err and "--skip-invalid" in err
    assert main(["sweep", str(bad), "--out", str(tmp_path / "b"), "--skip-invalid", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["finished"] == 1 and res["invalid"] == 1
    assert json.loads((tmp_path / "b" / "invalid.json").read_text())[0]["axes"] == {"deployment.tp": 3}
