"""Writing a run's results: summary JSON, per-request and time-series tables (Parquet; CSV on request)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from ..config.loader import scenario_to_yaml
from ..errors import InputError
from ..tables import grid, render, table
from .summary import pct_key, per_request, summarize, time_series

if TYPE_CHECKING:
    from ..engine.simulate import SimulationResult


def write_outputs(res: "SimulationResult", out: str | Path, summary: dict[str, Any] | None = None,
                  csv: bool = False) -> Path:
    """Write ``summary.json``, ``requests.parquet``, ``timeseries.parquet``, ``scenario.yaml`` and, with
    ``csv``, ``requests.csv`` and ``timeseries.csv`` besides (CSV costs about 25 times Parquet's time)."""
    d = Path(out)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError("--out", str(out), f"cannot create the folder ({err.strerror})") from None
    df = per_request(res)
    ts = time_series(res)
    summary = summary or summarize(res, df)
    (d / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    df.to_parquet(d / "requests.parquet", index=False)
    ts.to_parquet(d / "timeseries.parquet", index=False)
    if csv:
        df.to_csv(d / "requests.csv", index=False)
        ts.to_csv(d / "timeseries.csv", index=False)
    (d / "scenario.yaml").write_text(scenario_to_yaml(res.scenario))
    return d


def _stable(st: dict[str, Any]) -> str:
    if st.get("judged") is False:
        return f"n/a: {st['reason']}"
    if st["stable"]:
        return "yes"
    return f"NO: {st['reason']}" if st.get("reason") else "NO: the queue grew while requests arrived (overload)"


def duration(v: float | None) -> str:
    """Seconds as a readable duration: 850 us, 12.3 ms, 4.56 s, 3.2 min, 1.5 h."""
    if v is None:
        return "n/a"
    a = abs(v)
    if a < 1e-3:
        return f"{v * 1e6:.0f} us"
    if a < 1.0:
        return f"{v * 1e3:.1f} ms"
    if a < 120.0:
        return f"{v:.2f} s"
    if a < 7200.0:
        return f"{v / 60:.1f} min"
    return f"{v / 3600:.1f} h"


def header(s: dict[str, Any]) -> list[tuple[str, str]]:
    """What ran: model, GPUs, engine, parallelism, precision, arrivals and offered rate, SLOs."""
    u = s.get("setup")
    if not u:
        return []
    load = (f"closed loop, {u['concurrency']} clients" if u.get("concurrency")
            else f"{u['arrival']}" + (f" at {u['offered_rate']:.3g} req/s offered" if u.get("offered_rate") else ""))
    slos = ", ".join(f"{k.removesuffix('_s').upper()} <= {duration(v)}" for k, v in (s.get("slos") or {}).items())
    return [("model", f"{u['model']} on {u['gpus']} x {u['gpu']} ({u['engine']} engine, TP{u['tp']} PP{u['pp']}, "
             f"{u['replicas']} replica{'s' if u['replicas'] != 1 else ''}; weights {u['weight_dtype']}, "
             f"KV {u['kv_dtype']})"),
            ("load", load), ("SLOs", slos or "none")]


def verdict(s: dict[str, Any]) -> tuple[str, str]:
    """Offered against achieved rate, and whether the system kept up."""
    r = s.get("rate") or {}
    st = s.get("stability") or {}
    if r.get("offered_rate") is None:
        return ("rate", "n/a (no arrival span: offline, closed loop or too few requests)"
                + ("; DID NOT KEEP UP: no request completed" if r.get("kept_up") is False else ""))
    line = f"offered {r['offered_rate']:.3g} req/s, completed {r['achieved_rate']:.3g} req/s (second half of arrivals)"
    if r.get("kept_up") is None:
        return ("rate", f"{line}: n/a, {st.get('reason', 'too few arrivals to tell')}")
    return ("rate", line + (": kept up" if r["kept_up"] else
                            f": DID NOT KEEP UP ({st.get('reason') or 'the backlog grew'})"))


def latency_table(s: dict[str, Any]) -> Table:
    """TTFT, TPOT, ITL and E2E: mean, median, the percentiles of the run and max, in scaled units."""
    pcts = [pct_key(p) for p in s.get("percentiles") or (50, 90, 99) if p != 50]
    cols = ["latency", "mean", "median", *pcts, "max"]
    t = table(cols)
    for name, key in (("TTFT", "ttft_s"), ("TPOT", "tpot_s"), ("ITL", "itl_s"), ("E2E", "e2e_s")):
        block = s.get(key) or {}
        t.add_row(name, *(duration(block.get(c)) for c in cols[1:]))
    return t


def summary_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """The label / value lines of the summary after the header (latencies are a table of their own)."""
    w = s.get("window") or {}
    rows = [
        ("requests", f"{s['requests']} ({s['completed']} completed, {s['rejected']} rejected) over {s['duration_s']:.1f} s"),
        ("window", f"{w.get('start_s', 0.0):.1f} s to {w.get('end_s', 0.0):.1f} s; "
         + (f"the first {w['warmup_requests']} requests were warm-up, left out of every metric"
            if w.get("warmup_requests") else "no warm-up requests")),
        ("throughput", f"{s['throughput_requests_per_s']:.2f} req/s, {s['throughput_output_tokens_per_s']:.0f} "
         f"output tok/s, {s['throughput_input_tokens_per_s']:.0f} input tok/s"),
        ("goodput", f"{s['goodput_requests_per_s']:.2f} req/s meeting the SLOs (attainment {s['slo_attainment']:.1%})"),
        *utilisation_rows(s),
        ("preemptions", str(s["preemptions"])),
        ("stable", _stable(s["stability"])),
    ]
    rows += [("rejected", f"{count}: {reason}") for reason, count in (s.get("rejected_by_reason") or {}).items()]
    return rows + feature_rows(s)


def utilisation_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """GPU busy time against wall time; MFU and MBU named against the peak they divide by."""
    pk = s.get("utilisation_peaks") or {}
    per = " per GPU (each pool's own)" if pk.get("mixed") else ""
    mfu = (f"MFU {s['mfu']:.1%} of {pk['peak_tflops_per_gpu']:.4g} TFLOPS {pk['compute_dtype']} dense{per}"
           if pk else f"MFU {s['mfu']:.1%}")
    mbu = f"MBU {s['mbu']:.1%} of {pk['hbm_tbps_per_gpu']:.3g} TB/s HBM{per}" if pk else f"MBU {s['mbu']:.1%}"
    return [("GPU busy", f"{s['busy_fraction']:.1%} of wall time running engine steps (a step with a small "
             "batch counts as busy: see MFU/MBU for how hard the GPUs worked)"),
            ("utilisation", f"{mfu}; {mbu}; KV cache peak {s['kv_cache']['peak_used_fraction']:.1%}")]


def feature_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """Lines for the serving optimisations that ran, replications and notes."""
    rows = []
    pc = s.get("prefix_cache")
    if pc:
        rows.append(("prefix cache", f"hit rate {pc['hit_rate']:.1%} of prompt tokens, "
                     f"{pc['prefill_tokens_saved']} prefill tokens saved"))
    sp = s.get("speculative")
    if sp:
        rows.append(("speculative", f"{sp['method']}, k={sp['k']}: {sp['tokens_per_step']:.2f} tokens per step "
                     f"(expected {sp['expected_tokens_per_step']:.2f})"))
    dg = s.get("disaggregation")
    if dg:
        rows.append(("disaggregated", f"{dg['transfers']} KV transfers, mean {duration(dg['kv_transfer_s']['mean'])}"))
    for key in ("service_cache", "cascade"):
        if s.get(key):
            rows.append((key, ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in s[key].items() if not isinstance(v, dict))))
    if s.get("confidence"):
        c = s["confidence"]
        rows.append(("replications", f"{c['replications']} seeds, {c['level']:.0%} confidence intervals:"))
        for key in ("throughput_output_tokens_per_s", "goodput_requests_per_s", "ttft_s.p99", "tpot_s.p50"):
            m = c["metrics"].get(key)
            if m and m.get("mean") is not None:
                rows.append(("", f"{key}  {m['mean']:.4g}  [{m['low']:.4g}, {m['high']:.4g}]"))
    return rows + [("note", note) for note in s.get("notes", [])]


def format_summary(s: dict[str, Any], width: int | None = None) -> str:
    """A readable summary for the terminal, wrapped to ``width`` columns (the terminal's)."""
    return render(grid([*header(s), verdict(s)]), latency_table(s), grid(summary_rows(s)), width=width)
