"""Engine speed: wall time to simulate N requests of chat traffic (Llama-3.1-8B, one H100,
continuous batching), for several N and replica counts, on one core.

    python benchmarks/engine_speed.py                       # the full table (1M requests: 1.5–2 min on a 2-vCPU VM)
    python benchmarks/engine_speed.py --quick               # small sizes only
    python benchmarks/engine_speed.py --out docs/benchmarks/engine_speed.json
    python benchmarks/engine_speed.py --sizes 100000,1000000 --replicas ''   # chosen sizes only
    python benchmarks/engine_speed.py --reference ...       # the pure-Python references, not the C parts
    python benchmarks/engine_speed.py --sizes 1000 --replicas '' --output-tokens 32768   # the long-output case

Each row runs in a fresh process and reports the simulation's time (wall and CPU), the summary's
(``summarize``, as ``servesim run`` prints it), then the per-request table's (``per_request``, what
``--out`` writes), and the process's peak resident memory (``ru_maxrss``) after each.

Load: Poisson arrivals at `--rate` requests/s per replica (default 16, below one replica's
saturation on this scenario: every row reports whether the run was stable), lengths from the
embedded chat workload (Azure 2023 conversation statistics). Time grows linearly with requests
when the wall time per request stays flat.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from multiprocessing import get_context

from simulator.config import load_scenario
from simulator.engine.decode_set import NativeDecodeSet, decode_set_type
from simulator.engine.simulate import simulate
from simulator.metrics.summary import per_request, summarize
from simulator.native import NATIVE_ENV


#: Requests per second per replica (below one replica's saturation: the rows report ``stable``).
RATE = 16.0


def overrides(requests: int, replicas: int, rate_per_replica: float, output_tokens: int | None = None) -> dict:
    """The benchmark's settings over the embedded default scenario (``--set``-style dotted keys)."""
    out = {"workload.requests": requests, "workload.arrival.rate": rate_per_replica * replicas,
           "deployment.replicas": replicas, "deployment.router": "least_outstanding"}
    if output_tokens:
        out["workload.output_tokens"] = {"dist": "fixed", "value": output_tokens}
    return out


def peak_rss() -> int:
    """This process's peak resident memory so far, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def one(requests: int, replicas: int, rate_per_replica: float, output_tokens: int | None = None) -> dict:
    s = load_scenario(None, overrides(requests, replicas, rate_per_replica, output_tokens))
    base = peak_rss()
    t, c = time.perf_counter(), time.process_time()
    res = simulate(s)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    sim_peak = peak_rss()
    t, c = time.perf_counter(), time.process_time()
    sm = summarize(res)
    summary_s, summary_cpu = time.perf_counter() - t, time.process_time() - c
    peak = peak_rss()
    t, c = time.perf_counter(), time.process_time()
    rows = len(per_request(res))
    table_s, table_cpu = time.perf_counter() - t, time.process_time() - c
    table_peak = peak_rss()
    return {"requests": requests, "replicas": replicas, "rate": rate_per_replica * replicas, "wall_s": wall, "cpu_s": cpu,
            "output_tokens": output_tokens or "chat", "generated_tokens": int(res.requests.generated.sum()),
            "summary_s": summary_s, "summary_cpu_s": summary_cpu, "summary_share": summary_s / wall,
            "summary_cpu_share": summary_cpu / cpu, "table_s": table_s, "table_cpu_s": table_cpu, "table_rows": rows,
            "rss_start_mb": base / 2**20, "peak_rss_simulation_mb": sim_peak / 2**20, "peak_rss_mb": peak / 2**20,
            "peak_bytes_per_request": (peak - base) / requests, "peak_rss_table_mb": table_peak / 2**20,
            "peak_bytes_per_request_table": (table_peak - base) / requests,
            "us_per_request": wall / requests * 1e6, "simulated_s": sm["duration_s"],
            "steps": sm["steps"], "step_log_rows": len(res.steps["t_end"]), "stable": sm["stability"]["stable"],
            "tpot_p50_s": sm["tpot_s"]["p50"], "ttft_p50_s": sm["ttft_s"]["p50"]}


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it ('' where it does not)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        return ""


def counts(text: str) -> list[int]:
    """A comma-separated list of positive integers ('' for none), for argparse."""
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        out = []
    if any(v < 1 for v in out) or (text.strip() and not out):
        raise argparse.ArgumentTypeError(f"got {text!r}; give positive integers separated by commas")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rate", type=float, default=RATE, help="requests per second per replica")
    ap.add_argument("--sizes", type=counts,
                    help="comma-separated request counts of the one-replica rows (default: the table's)")
    ap.add_argument("--replicas", type=counts, default="2,4",
                    help="replica counts of the extra rows at the second size ('' for none)")
    ap.add_argument("--reference", action="store_true",
                    help="run the pure-Python references of the compiled parts (SERVESIM_NATIVE=0)")
    ap.add_argument("--output-tokens", type=int, help="fixed output length (default: the chat distribution)")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.reference:
        os.environ[NATIVE_ENV] = "0"
    native = decode_set_type() is NativeDecodeSet
    print(f"compiled parts: {'yes' if native else 'no (pure-Python references)'}", flush=True)
    if a.sizes:
        sizes = a.sizes
    else:
        sizes = [10_000, 30_000] if a.quick else [10_000, 100_000, 300_000, 1_000_000]
    plan = [(n, 1) for n in sizes] + [(sizes[min(1, len(sizes) - 1)], r) for r in a.replicas]
    rows = []
    for n, reps in plan:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as ex:
            r = ex.submit(one, n, reps, a.rate, a.output_tokens).result()
        rows.append(r)
        print(f"{r['requests']:>9} req  {r['replicas']} replica(s)  {r['wall_s']:8.2f} s ({r['cpu_s']:.2f} s CPU)  "
              f"{r['us_per_request']:6.1f} us/req  summary {r['summary_s']:6.2f} s ({r['summary_cpu_s']:.2f} s CPU, "
              f"{r['summary_cpu_share']:.0%})  peak {r['peak_rss_mb']:7.0f} MB ({r['peak_bytes_per_request']:6.0f} B/req)  "
              f"table {r['table_s']:5.2f} s, peak {r['peak_rss_table_mb']:7.0f} MB "
              f"({r['peak_bytes_per_request_table']:6.0f} B/req)  simulated {r['simulated_s']:9.0f} s  "
              f"stable {r['stable']}", flush=True)
    if a.out:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
                "processor": platform.processor() or platform.machine(), "cpu_model": cpu_model(),
                "cpus": os.cpu_count(), "native": native,
                "python": platform.python_version(), "command": "python benchmarks/engine_speed.py"
                + (" --quick" if a.quick else "") + (" --reference" if a.reference else "") + f" --rate {a.rate}"
                + (f" --output-tokens {a.output_tokens}" if a.output_tokens else "")
                + (f" --sizes {','.join(map(str, a.sizes))} --replicas '{','.join(map(str, a.replicas))}'"
                   if a.sizes else "")}
        with open(a.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
