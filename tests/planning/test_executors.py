"""Sweep workers end when the sweep's main process is killed (SIGKILL leaves no handler to run)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

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
