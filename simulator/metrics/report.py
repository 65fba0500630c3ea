"""Writing a run's results: summary JSON, per-request and time-series tables (Parquet; CSV on request)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.loader import scenario_to_yaml
from ..errors import InputError
from .summary import per_request, summarize, time_series

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


def header(s: dict[str, Any]) -> list[str]:
    """What ran: model, GPUs, engine, parallelism, precision, arrivals and offered rate, SLOs."""
    u = s.get("setup")
    if not u:
        return []
    load = (f"closed loop, {u['concurrency']} clients" if u.get("concurrency")
            else f"{u['arrival']}" + (f" at {u['offered_rate']:.3g} req/s offered" if u.get("offered_rate") else ""))
    slos = ", ".join(f"{k.removesuffix('_s').upper()} <= {duration(v)}" for k, v in (s.get("slos") or {}).items())
    return [f"model         {u['model']} on {u['gpus']} x {u['gpu']} ({u['engine']} engine, TP{u['tp']} PP{u['pp']}, "
            f"{u['replicas']} replica{'s' if u['replicas'] != 1 else ''}; weights {u['weight_dtype']}, KV {u['kv_dtype']})",
            f"load          {load}", f"SLOs          {slos or 'none'}"]


def verdict(s: dict[str, Any]) -> str:
    """Offered against achieved rate, and whether the system kept up."""
    r = s.get("rate") or {}
    if r.get("kept_up") is None:
        return "rate          n/a (no arrival span: offline or too few requests)"
    line = f"rate          offered {r['offered_rate']:.3g} req/s, completed {r['achieved_rate']:.3g} req/s (second half of arrivals)"
    return line + (": kept up" if r["kept_up"] else ": DID NOT KEEP UP, the backlog grew (overloaded)")


def format_summary(s: dict[str, Any]) -> str:
    """A readable multi-line summary for the terminal."""
    def ms(block: dict[str, float | None]) -> str:
        return "  ".join(f"{k} {duration(block.get(k)):>9}" for k in ("mean", "p50", "p90", "p99", "max"))

    w = s.get("window") or {}
    lines = [*header(s), verdict(s),
        f"requests      {s['requests']} ({s['completed']} completed, {s['rejected']} rejected)"
        f" over {s['duration_s']:.1f} s",
        f"window        {w.get('start_s', 0.0):.1f} s to {w.get('end_s', 0.0):.1f} s; "
        + (f"the first {w['warmup_requests']} requests were warm-up, left out of every metric"
           if w.get("warmup_requests") else "no warm-up requests"),
        f"throughput    {s['throughput_requests_per_s']:.2f} req/s, "
        f"{s['throughput_output_tokens_per_s']:.0f} output tok/s, {s['throughput_input_tokens_per_s']:.0f} input tok/s",
        f"goodput       {s['goodput_requests_per_s']:.2f} req/s meeting the SLOs "
        f"(attainment {s['slo_attainment']:.1%})",
        "latency:",
        f"  TTFT        {ms(s['ttft_s'])}",
        f"  TPOT        {ms(s['tpot_s'])}",
        f"  ITL         {ms(s['itl_s'])}",
        f"  E2E         {ms(s['e2e_s'])}",
        f"utilisation   MFU {s['mfu']:.1%}  MBU {s['mbu']:.1%}  busy {s['busy_fraction']:.1%}  "
        f"KV peak {s['kv_cache']['peak_used_fraction']:.1%}",
        f"preemptions   {s['preemptions']}",
        f"stable        {_stable(s['stability'])}",
    ]
    for reason, count in (s.get("rejected_by_reason") or {}).items():
        lines.append(f"rejected      {count}: {reason}")
    pc = s.get("prefix_cache")
    if pc:
        lines.append(f"prefix cache  hit rate {pc['hit_rate']:.1%} of prompt tokens, "
                     f"{pc['prefill_tokens_saved']} prefill tokens saved")
    sp = s.get("speculative")
    if sp:
        lines.append(f"speculative   {sp['method']}, k={sp['k']}: {sp['tokens_per_step']:.2f} tokens per step "
                     f"(expected {sp['expected_tokens_per_step']:.2f})")
    dg = s.get("disaggregation")
    if dg:
        lines.append(f"disaggregated {dg['transfers']} KV transfers, mean {dg['kv_transfer_s']['mean'] * 1e3:.1f} ms")
    for key in ("service_cache", "cascade"):
        if s.get(key):
            lines.append(f"{key:<13} " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                                   for k, v in s[key].items() if not isinstance(v, dict)))
    if s.get("confidence"):
        c = s["confidence"]
        lines.append(f"replications  {c['replications']} seeds, {c['level']:.0%} confidence intervals:")
        for key in ("throughput_output_tokens_per_s", "goodput_requests_per_s", "ttft_s.p99", "tpot_s.p50"):
            m = c["metrics"].get(key)
            if m and m.get("mean") is not None:
                lines.append(f"  {key:<32} {m['mean']:.4g}  [{m['low']:.4g}, {m['high']:.4g}]")
    for note in s.get("notes", []):
        lines.append(f"note          {note}")
    return "\n".join(lines)
