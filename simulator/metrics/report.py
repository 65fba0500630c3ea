"""Writing a run's results: summary JSON, per-request and time-series tables (Parquet + CSV)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .summary import per_request, summarize, time_series

if TYPE_CHECKING:
    from ..engine.simulate import SimulationResult


def write_outputs(res: "SimulationResult", out: str | Path, summary: dict[str, Any] | None = None) -> Path:
    """Write ``summary.json``, ``requests.{parquet,csv}``, ``timeseries.{parquet,csv}``, ``scenario.yaml``."""
    from ..config.loader import scenario_to_yaml

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
    df.to_csv(d / "requests.csv", index=False)
    ts.to_parquet(d / "timeseries.parquet", index=False)
    ts.to_csv(d / "timeseries.csv", index=False)
    (d / "scenario.yaml").write_text(scenario_to_yaml(res.scenario))
    return d


def _stable(st: dict[str, Any]) -> str:
    if st["stable"]:
        return "yes"
    return f"NO: {st['reason']}" if st.get("reason") else "NO: the queue grew while requests arrived (overload)"


def format_summary(s: dict[str, Any]) -> str:
    """A readable multi-line summary for the terminal."""
    def ms(block: dict[str, float | None]) -> str:
        return "  ".join(f"{k} {v * 1e3:9.1f}" if v is not None else f"{k}      n/a" for k, v in block.items())

    w = s.get("window") or {}
    lines = [
        f"requests      {s['requests']} ({s['completed']} completed, {s['rejected']} rejected)"
        f" over {s['duration_s']:.1f} s",
        f"window        {w.get('start_s', 0.0):.1f} s to {w.get('end_s', 0.0):.1f} s; "
        + (f"the first {w['warmup_requests']} requests were warm-up, left out of every metric"
           if w.get("warmup_requests") else "no warm-up requests"),
        f"throughput    {s['throughput_requests_per_s']:.2f} req/s, "
        f"{s['throughput_output_tokens_per_s']:.0f} output tok/s, {s['throughput_input_tokens_per_s']:.0f} input tok/s",
        f"goodput       {s['goodput_requests_per_s']:.2f} req/s meeting the SLOs "
        f"(attainment {s['slo_attainment']:.1%})",
        "latency in milliseconds:",
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
