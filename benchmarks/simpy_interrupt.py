"""What a SimPy interrupt costs per arrival: the engine cuts a decode run short by interrupting the
scheduler's timeout (``engine/schedulers/base.py``); arrival look-ahead would instead end the run with a
plain timeout at the right step. Compares the two event patterns, nothing else.

    python benchmarks/simpy_interrupt.py [--arrivals 200000]

interrupted: each arrival interrupts a long timeout, which then waits out a short rest.
plain:       two plain timeouts per arrival (the same number of scheduler wake-ups without interrupts).
"""
from __future__ import annotations

import argparse
import time

import simpy


def interrupted(env: simpy.Environment, n: int) -> None:
    def scheduler():
        while True:
            try:
                yield env.timeout(10.0)
            except simpy.Interrupt:
                yield env.timeout(0.01)

    proc = env.process(scheduler())

    def arrivals():
        for _ in range(n):
            yield env.timeout(1.0)
            proc.interrupt()

    env.process(arrivals())


def plain(env: simpy.Environment, n: int) -> None:
    def scheduler():
        while True:
            yield env.timeout(0.5)
            yield env.timeout(0.51)

    env.process(scheduler())

    def arrivals():
        for _ in range(n):
            yield env.timeout(1.0)

    env.process(arrivals())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arrivals", type=int, default=200_000)
    n = p.parse_args().arrivals
    for name, build in (("interrupted", interrupted), ("plain", plain)):
        env = simpy.Environment()
        build(env, n)
        t = time.process_time()
        env.run(until=n * 1.0)
        print(f"{name}: {(time.process_time() - t) / n * 1e6:.2f} us per arrival (simpy {simpy.__version__})")


if __name__ == "__main__":
    main()
