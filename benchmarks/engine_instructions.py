"""A/B engine work in CPU instructions: the benchmark's chat scenario (as in ``engine_speed.py``, one
replica) simulated by two source trees under valgrind's callgrind, which counts the instructions
executed. Unlike wall or CPU time on a shared VM (runs of the same code differ by up to 30%), the
count of one tree repeats to about 0.02% (hash seed fixed); two checkouts of one commit differed by up
to about 0.5% per request, and two checkouts of nearly the same code by 3% at 5,000 requests (2026-12-07),
so differences of a few percent at this size are noise: use more requests to separate small changes. It misses what instructions do not show
(cache misses, branch mispredictions), so confirm a gain with ``engine_ab.py``. Each run takes about
a minute per 5,000 requests.

    python benchmarks/engine_instructions.py BASE_TREE NEW_TREE [--requests 5000]

Per tree: instructions of the whole process at N = ``--requests`` and at 2N, and their difference
per request: the marginal work of requests N+1 to 2N, without the start-up (imports, model and
catalog loading), which differs between two trees by up to 0.6% for reasons of their own (paths,
layout). Needs ``valgrind`` on the PATH.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

from engine_ab import check_trees
from engine_speed import RATE, overrides   # the benchmark's scenario, defined once

ONE = """
import json, sys
from simulator.config import load_scenario
from simulator.engine.simulate import simulate
simulate(load_scenario(None, json.loads(sys.argv[1])))
"""


def instructions(tree: str, requests: int) -> int:
    """Instructions (callgrind's Ir) of one process simulating ``requests`` requests with ``tree``'s package."""
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree), "PYTHONHASHSEED": "0"}   # same hashing each run
    sets = json.dumps(overrides(requests, 1, RATE))
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                          "-c", ONE, sets], cwd=tree, env=env, check=True, capture_output=True, text=True)
    m = re.search(r"Collected\s*:\s*(\d+)", out.stderr)
    if m is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--requests", type=int, default=5000)
    a = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("error: valgrind: not found on the PATH; install valgrind (callgrind counts the instructions)",
              file=sys.stderr)
        sys.exit(2)
    if a.requests < 1:
        print(f"error: --requests: got {a.requests}; give a positive count", file=sys.stderr)
        sys.exit(2)
    check_trees(a.base, a.new)   # both before minutes of measuring
    per = {}
    for name, tree in (("base", a.base), ("new", a.new)):
        one, two = instructions(tree, a.requests), instructions(tree, 2 * a.requests)
        per[name] = (two - one) / a.requests
        print(f"{name}: {one:,} instructions at {a.requests} requests, {two:,} at {2 * a.requests}; "
              f"{per[name]:,.0f} per request in between", flush=True)
    print(f"new/base per request: {per['new'] / per['base']:.4f}")


if __name__ == "__main__":
    main()
