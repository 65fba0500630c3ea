"""A/B engine speed: the benchmark's chat scenario (as in ``engine_speed.py``, one replica) simulated
by two source trees in turn, so that both see the same machine conditions; CPU seconds of
``simulate`` only (model and catalog loading included, scenario parsing not).

    python benchmarks/engine_ab.py BASE_TREE NEW_TREE [--requests 1000000] [--pairs 2]

BASE_TREE / NEW_TREE: checkouts of the repository (e.g. ``git worktree add /tmp/base <commit>``).
On a noisy machine, compare the runs pair by pair rather than the two sets' means.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from engine_speed import RATE, overrides   # the benchmark's scenario, defined once

ONE = """
import json, sys, time
from simulator.config import load_scenario
from simulator.engine.simulate import simulate
s = load_scenario(None, json.loads(sys.argv[1]))
t = time.process_time()
simulate(s)
print(json.dumps({"cpu_s": time.process_time() - t}))
"""


def run_once(tree: str, requests: int) -> float:
    """CPU seconds of one simulation by the package in ``tree``."""
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    sets = json.dumps(overrides(requests, 1, RATE))
    out = subprocess.run([sys.executable, "-c", ONE, sets], cwd=tree, env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["cpu_s"])


def check_trees(*trees: str) -> None:
    """Exit with one line and code 2 unless every tree is a checkout holding the ``simulator`` package."""
    for tree in trees:
        if not os.path.isdir(os.path.join(tree, "simulator")):
            print(f"error: tree: {tree} holds no simulator/ package; pass a checkout of the repository",
                  file=sys.stderr)
            sys.exit(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--pairs", type=int, default=2)
    a = ap.parse_args()
    check_trees(a.base, a.new)
    for i in range(a.pairs):
        b, n = run_once(a.base, a.requests), run_once(a.new, a.requests)
        print(f"pair {i + 1}: base {b:.1f} s  new {n:.1f} s  new/base {n / b:.3f}", flush=True)


if __name__ == "__main__":
    main()
