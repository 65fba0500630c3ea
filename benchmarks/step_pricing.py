"""Where the engine's step pricing goes: the engine benchmark's scenario (``engine_speed.py``) with
timers on the step model's pricing of steps that are not memoised whole (``StepModel._price``) and on
its part builds (the builders ``StepModel._part`` calls on a miss of its part memo), counted by part kind. The timers add
to the total, so read the shares, not the seconds.

    python benchmarks/step_pricing.py [--requests 1000000]
"""
from __future__ import annotations

import argparse
import time
from typing import Any

from engine_methods import cpu_with

from simulator.perf import step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=1_000_000)
    n = p.parse_args().requests
    acc: dict[str, Any] = {"price_s": 0.0, "priced": 0, "build_s": 0.0, "builds": {}}
    price, part = step.StepModel._price, step.StepModel._part

    def timed_price(self: step.StepModel, key: tuple) -> tuple[float, float, float]:
        t = time.perf_counter()
        try:
            return price(self, key)
        finally:
            acc["price_s"] += time.perf_counter() - t
            acc["priced"] += 1

    def timed_part(self: step.StepModel, key: tuple, build: Any) -> Any:
        def timed_build() -> Any:       # called only when the part is not memoised
            t = time.perf_counter()
            try:
                return build()
            finally:
                acc["build_s"] += time.perf_counter() - t
                acc["builds"][key[0]] = acc["builds"].get(key[0], 0) + 1
        return part(self, key, timed_build)

    total = cpu_with([(step.StepModel, "_price", timed_price), (step.StepModel, "_part", timed_part)], n)
    builds = sum(acc["builds"].values())
    print(f"total {total:.1f} s CPU ({n} requests, timers in place)")
    print(f"steps priced from parts: {acc['priced']:,} in {acc['price_s']:.1f} s ({acc['price_s'] / total:.0%})")
    print(f"  of which part builds:  {builds:,} in {acc['build_s']:.1f} s ({acc['build_s'] / total:.0%}): "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(acc["builds"].items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
