"""Sweep workers end when the sweep's main process is killed (SIGKILL leaves no handler to run), and
what the main process would have cleaned up on exit is cleaned up."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.planning import store

SCRIPT = """
import os, sys, time
from simulator.planning.executors import worker_pool
if __name__ == "__main__":
    pool = worker_pool(2)
    pids = set()
    for _ in range(50):
        pids |= {f.result() for f in [pool.submit(os.getpid) for _ in range(8)]}
        if len(pids) >= 2:
            break
    print(" ".join(map(str, sorted(pids))), flush=True)
    pool.submit(time.sleep, 600)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie awaiting its reaper counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process checks use /proc")
def test_workers_end_when_the_main_process_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        pids = [int(x) for x in line.split()]
        assert len(pids) >= 2 and all(_alive(p) for p in pids)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


def _session(sid: int) -> dict[int, str]:
    """Live processes of session ``sid``: pid -> command line."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    fields = fh.read().split(")")[-1].split()
                with open(f"/proc/{d}/cmdline") as fh:
                    cmd = fh.read().replace("\0", " ")
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                out[int(d)] = cmd
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process checks use /proc")
def test_sigkill_of_a_sweep_leaves_no_process_and_no_temp_file(tmp_path):
    """After SIGKILL of a sweep's main process its workers, forkserver and resource tracker end,
    and neither its multiprocessing temp folder nor half-written files remain."""
    tmp, out = tmp_path / "tmp", tmp_path / "out"
    tmp.mkdir()
    sweep = Path(__file__).resolve().parents[2] / "examples" / "sweeps" / "tp-rate.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "sweep", str(sweep), "--out", str(out),
                             "--workers", "2"], env={**os.environ, "TMPDIR": str(tmp)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:    # main, resource tracker, forkserver and two workers
            procs = _session(proc.pid)
            if len(procs) >= 5 and any("forkserver" in c for c in procs.values()):
                break
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.05)
        assert any("resource_tracker" in c for c in procs.values()), procs
        assert any(tmp.iterdir())                                  # the forkserver's socket folder
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _session(proc.pid):
        time.sleep(0.2)
    assert _session(proc.pid) == {}
    assert list(tmp.iterdir()) == []
    assert [p.name for p in out.rglob(".*")] == []


def test_a_resumed_sweep_removes_temp_files_a_killed_one_left(tmp_path):
    points = tmp_path / store.POINTS
    points.mkdir()
    left = [tmp_path / ".results.abc123.parquet", tmp_path / ".sweep.yaml.x1", points / ".0f3a.json.zz9"]
    kept = [tmp_path / "results.parquet", points / "0f3a.json", tmp_path / ".hidden-by-the-user"]
    for p in left + kept:
        p.write_bytes(b"x")
    store.prepare(tmp_path)
    assert [p for p in left if p.exists()] == [] and all(p.exists() for p in kept)
