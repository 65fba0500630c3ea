"""Compare servesim with the measured engine, point by point and step by step.

For every measured point: open-loop points become an Azure-format trace with the measured arrival
times and lengths (a request-by-request replay), closed-loop points a ``closed_loop`` scenario with
the same clients and the point's lengths (``empirical``, pooled over several seeds). The
deployment mirrors the engine's settings as it resolved them (``meta.json``): the engine profile
given by ``--engine`` (``hf-paged``: cuDNN SDPA off; ``hf-paged-cudnn``: on), the same sequences and
tokens per step and KV blocks, on the GPU profile that ``meta.json``'s device
name maps to (or ``--gpu``). Every logged engine step is also predicted from its batch shape. Usage::

    python -m calibration.e2e.compare calibration/data/e2e-h200 [--engine hf-paged] [--gpu h200-sxm] \
        [--charts docs/img --chart-prefix e2e] [--csv comparison.csv] [--host-from-steps]

``--host-from-steps`` is a diagnostic: each run is predicted with the engine's host time per kernel
taken from its own step log (the machine's speed set aside), not a validation of the profile.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .metrics import MeasuredDataError, add_metrics, compare, read_requests, request_errors, summary, throughput

MODEL = "llama-3.1-8b"
CLOSED_SEEDS = 8


def gpu_for(meta: dict[str, Any]) -> str:
    """The catalog GPU profile for a measured folder's ``meta.json`` device name ('NVIDIA H200',
    'NVIDIA H100 80GB HBM3'): the calibration name rules, else the catalog's names and aliases with
    the vendor dropped and trailing words removed one at a time."""
    from simulator.calibration.meta import profile_name_for
    from simulator.catalog.gpus import resolve_gpu_name
    from simulator.errors import InputError

    name = str((meta.get("device") or {}).get("name") or "")
    mapped = profile_name_for(name) if name else None
    if mapped:
        return mapped
    words = name.replace("NVIDIA", "").replace("AMD", "").split()
    for n in range(len(words), 0, -1):
        try:
            return resolve_gpu_name(" ".join(words[:n]))
        except InputError:
            continue
    raise InputError("meta.json device.name", name or None, "maps to no GPU profile: pass --gpu NAME (servesim gpus)")


def deployment(engine: dict[str, Any], name: str, gpu: str) -> dict[str, Any]:
    """The scenario's deployment section mirroring the engine's resolved settings."""
    return {"gpu": gpu, "engine": name,
            "batching": {"policy": "continuous", "max_batch_size": int(engine["max_batch_size"]),
                         "max_batched_tokens": int(engine["max_batch_tokens"]), "chunked_prefill": True},
            "kv_cache": {"block_size": int(engine["block_size"]), "num_blocks": int(engine["num_blocks"]),
                         "preemption": "recompute"}}


def write_trace(path: Path, arrival_s: np.ndarray, prompt: np.ndarray, output: np.ndarray) -> Path:
    """An Azure LLM inference trace CSV (TIMESTAMP, ContextTokens, GeneratedTokens) with these
    arrival times (seconds after an arbitrary origin)."""
    origin = dt.datetime(2026, 1, 1)
    stamps = [(origin + dt.timedelta(seconds=float(t))).strftime("%Y-%m-%d %H:%M:%S.%f") for t in arrival_s]
    pd.DataFrame({"TIMESTAMP": stamps, "ContextTokens": np.asarray(prompt, dtype=int),
                  "GeneratedTokens": np.asarray(output, dtype=int)}).to_csv(path, index=False)
    return path


def scenario(dep: dict[str, Any], workload: dict[str, Any], name: str, seed: int = 0) -> Any:
    from simulator.config.loader import scenario_from_dict

    return scenario_from_dict({"model": MODEL, "name": name, "seed": seed, "deployment": dep,
                               "workload": workload, "slo": {"ttft_s": None, "tpot_s": None}})


def predicted_frame(res: Any) -> tuple[pd.DataFrame, np.ndarray]:
    """servesim's requests in the measured frame's columns, plus its ITL samples (seconds, expanded
    from the weighted step-log samples to one value per 0.1% of weight)."""
    from simulator.metrics.summary import itl_samples, per_request

    pr = per_request(res)
    df = pd.DataFrame({"i": pr["request"], "prompt_tokens": pr["prompt_tokens"], "output_tokens": pr["output_tokens"],
                       "generated_tokens": pr["generated_tokens"], "arrival_s": pr["arrival_s"],
                       "first_token_s": pr["arrival_s"] + pr["ttft_s"], "last_token_s": pr["arrival_s"] + pr["e2e_s"],
                       "error": np.where(pr["finished"], "", "not finished"), "token_offsets_ms": ""})
    v, w = itl_samples(res.steps)
    keep = w > 0
    v, w = v[keep], w[keep]
    reps = np.maximum(1, np.round(w / w.sum() * 20000)).astype(int) if len(w) else np.zeros(0, int)
    return add_metrics(df), np.repeat(v, reps)


def predict_open(dep: dict[str, Any], rows: pd.DataFrame, work: Path, name: str) -> tuple[dict, pd.DataFrame]:
    """Replay one repeat of an open-loop point: the measured arrival times and lengths."""
    from simulator.engine.simulate import simulate

    rows = rows.sort_values("arrival_s")
    trace = write_trace(work / f"{name}.csv", rows["arrival_s"] - rows["arrival_s"].min(),
                        rows["prompt_tokens"], rows["output_tokens"])
    res = simulate(scenario(dep, {"arrival": {"process": "trace", "path": str(trace), "format": "azure"}}, name))
    df, itl = predicted_frame(res)
    df["i"] = rows["i"].to_numpy()          # the trace keeps arrival order
    df["ok"] &= rows["ok"].to_numpy()       # the same requests as measured (cancelled ones count for load only)
    return summary(df, itl), df


def predict_closed(dep: dict[str, Any], rows: pd.DataFrame, concurrency: int, work: Path, name: str) -> dict:
    """A closed-loop point: ``concurrency`` clients, the point's lengths resampled, pooled over seeds."""
    from simulator.engine.simulate import simulate

    lengths = work / f"{name}-lengths.csv"
    rows[["prompt_tokens", "output_tokens"]].to_csv(lengths, index=False)
    frames, itls, rates = [], [], []
    for seed in range(CLOSED_SEEDS):
        wl = {"arrival": {"process": "closed_loop", "concurrency": concurrency}, "requests": len(rows),
              "prompt_tokens": {"dist": "empirical", "path": str(lengths), "column": "prompt_tokens"},
              "output_tokens": {"dist": "empirical", "path": str(lengths), "column": "output_tokens"}}
        df, itl = predicted_frame(simulate(scenario(dep, wl, name, seed)))
        frames.append(df)
        itls.append(itl)
        rates.append(throughput(df["arrival_s"], np.where(df["ok"], df["last_token_s"], np.nan), df["output_tokens"]))
    out = summary(pd.concat(frames, ignore_index=True), np.concatenate(itls))
    out["throughput_rps"] = float(np.mean([r[0] for r in rates]))
    out["throughput_tok_s"] = float(np.mean([r[1] for r in rates]))
    return out


def step_comparison(steps: pd.DataFrame, engine_name: str, gpu: str) -> pd.DataFrame:
    """Predicted vs measured wall time of every logged engine step, from its batch shape."""
    from simulator.catalog.engines import load_engine
    from simulator.catalog.gpus import load_gpu
    from simulator.catalog.models import load_model
    from simulator.perf.step import BatchShape, StepModel

    sm = StepModel(load_model(MODEL), load_gpu(gpu), load_engine(engine_name))
    pred, gpu = [], []
    for r in steps.itertuples():
        t = sm.price(BatchShape(prefill_tokens=int(r.prefill_tokens), prefill_seqs=int(r.prefill_seqs),
                               prefill_pairs=float(r.prefill_pairs), prefill_kv=float(r.prefill_kv),
                               decode_seqs=int(r.decode_seqs), decode_ctx=float(r.decode_ctx)), exact=True, detail=True)
        pred.append(t.wall_s)
        gpu.append(t.gpu_s)
    out = steps.copy()
    out["predicted_s"], out["predicted_gpu_s"] = pred, gpu
    out["kind"] = np.where(out["prefill_seqs"] > 0, "with prompt chunk", "decode only")
    out["error"] = (out["predicted_s"] - out["wall_s"]) / out["wall_s"]
    return out


#: Decode-only steps with at most this many sequences are host-bound (``--host-from-steps``).
HOST_BOUND_SEQS = 8


def host_matched_engine(steps: pd.DataFrame, engine_name: str, gpu: str, path: Path) -> tuple[Path, float]:
    """``engine_name`` with its host time per launched kernel set from a run's own step log: the median
    host forward time of its host-bound decode-only steps over the kernels servesim counts per decode
    step (the other figures unchanged). Written to ``path``; returns it and the median (seconds)."""
    from .profile_fit import model_terms, write_engine_yaml

    host = steps[(steps["prefill_seqs"] == 0) & (steps["decode_seqs"] <= HOST_BOUND_SEQS)]["fwd_host_s"]
    med = float(host.median())
    kernels = model_terms(engine_name, gpu=gpu)[0]
    write_engine_yaml(path, engine_name, {"cpu_launch_per_kernel_s": med / kernels},
                      f"{engine_name} with the host time per kernel of one measured run ({med * 1e3:.1f} ms per "
                      "host-bound decode step); a diagnostic of calibration.e2e.compare --host-from-steps")
    return path, med


def run(data: Path, engine_name: str, work: Path, gpu: str | None = None,
        host_from_steps: bool = False, reps: list[int] | None = None) -> dict[str, Any]:
    """Every comparison for one measured folder: per-point tables, request errors, step errors.
    ``gpu``: catalog GPU profile (default: from meta.json's device name). ``host_from_steps``: each
    repeat is predicted with the engine's host time per kernel taken from that repeat's own step log
    (:func:`host_matched_engine`): a diagnostic that sets the machine's speed aside. ``reps``: only
    these repeats (default: all)."""
    meta = json.loads((data / "meta.json").read_text())
    gpu = gpu or gpu_for(meta)
    dep = deployment(meta["engine"], engine_name, gpu)
    reqs = read_requests(data / "requests.csv")
    points = pd.read_csv(data / "points.csv")
    steps = pd.read_csv(data / "steps.csv")
    if reps is not None:
        missing = sorted(set(reps) - set(points["rep"]))
        if missing:
            raise MeasuredDataError(f"reps: got {missing[0]}; {data} holds repeats "
                                    f"{', '.join(map(str, sorted(set(points['rep']))))}")
        reqs, points, steps = (f[f["rep"].isin(reps)] for f in (reqs, points, steps))
    points = points.drop_duplicates("name")
    out: dict[str, Any] = {"points": [], "tables": {}, "predicted": {}, "measured": {}, "gpu": gpu,
                           "engine": engine_name, "device": (meta.get("device") or {}).get("name", gpu),
                           "host_s": {}}
    deps = {}
    for rep in sorted(reqs["rep"].unique()):
        if host_from_steps:
            path, out["host_s"][int(rep)] = host_matched_engine(steps[steps["rep"] == rep], engine_name, gpu,
                                                                work / f"host-matched-r{rep}.yaml")
            deps[rep] = deployment(meta["engine"], str(path), gpu)
        else:
            deps[rep] = dep
    for pt in points.itertuples():
        sel = reqs[reqs["point"] == pt.name]
        measured = [summary(g) for _, g in sel.groupby("rep")]
        # every point: replay of the measured arrivals and lengths, request by request
        preds = [predict_open(deps[rep], g, work, f"{pt.name}-r{rep}") for rep, g in sel.groupby("rep")]
        pred = {k: float(np.mean([p[0][k] for p in preds])) for k in preds[0][0]}
        errs = np.concatenate([request_errors(g, p[1]) for (_, g), p in zip(sel.groupby("rep"), preds)])
        out["predicted"][pt.name] = pd.concat([p[1] for p in preds])
        out["points"].append({"name": pt.name, "kind": pt.kind, "rate": float(pt.rate),
                              "concurrency": int(pt.concurrency), "measured": measured, "predicted": pred,
                              "request_e2e_abs_error_p50": float(np.median(np.abs(errs))) if len(errs) else np.nan})
        out["tables"][pt.name] = pd.DataFrame(compare(measured, pred))
        out["measured"][pt.name] = sel
        if pt.kind == "closed":   # and servesim's own closed loop: same clients, the point's lengths resampled
            first = sel["rep"].min()
            closed = predict_closed(deps[first], sel[sel["rep"] == first], int(pt.concurrency), work, pt.name)
            out["points"][-1]["closed_model"] = closed
            out["tables"][f"{pt.name} (closed-loop model)"] = pd.DataFrame(compare(measured, closed))
    out["steps"] = step_comparison(steps, engine_name, gpu)
    if (data / "profile_steps.csv").exists():   # runs made with --profile-batches '' have none
        prof = pd.read_csv(data / "profile_steps.csv")
        out["profile_steps"] = step_comparison(prof[prof["run"] == "plain"], engine_name, gpu)
    return out


def step_table(steps: pd.DataFrame) -> pd.DataFrame:
    """Median measured and predicted step time and median error by step kind."""
    g = steps.groupby("kind")
    return pd.DataFrame({"steps": g.size(), "measured_ms": g["wall_s"].median() * 1e3,
                         "predicted_ms": g["predicted_s"].median() * 1e3, "median_error": g["error"].median(),
                         "p10_error": g["error"].quantile(0.1), "p90_error": g["error"].quantile(0.9)})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m calibration.e2e.compare", description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path, help="folder written by calibration.e2e.harness")
    p.add_argument("--engine", default="hf-paged", help="engine profile (servesim engines)")
    p.add_argument("--gpu", default=None, help="GPU profile (default: mapped from meta.json's device name)")
    p.add_argument("--work", type=Path, default=None, help="folder for the generated traces (default: temporary)")
    p.add_argument("--charts", type=Path, default=None, help="write the PNG charts here")
    p.add_argument("--chart-prefix", default="e2e", help="file name prefix of the charts (default e2e)")
    p.add_argument("--csv", type=Path, default=None, help="write the comparison table here")
    p.add_argument("--reps", type=str, default=None,
                   help="compare only these repeats, comma-separated (default: all)")
    p.add_argument("--host-from-steps", action="store_true",
                   help="diagnostic: predict each repeat with the host time per kernel of its own step log")
    a = p.parse_args(argv)
    import tempfile

    from simulator.errors import ServesimError

    try:
        reps = None if a.reps is None else [int(x) for x in a.reps.split(",")]
    except ValueError:
        print(f"error: --reps: got {a.reps!r}; give repeat numbers separated by commas, e.g. 0,2", file=sys.stderr)
        return 2
    if not (a.data / "meta.json").is_file():
        print(f"error: data: {a.data} holds no meta.json; pass a folder written by calibration.e2e.harness",
              file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = a.work or Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            out = run(a.data, a.engine, work, a.gpu, a.host_from_steps, reps)
    except (ServesimError, MeasuredDataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = []
    for name, t in out["tables"].items():
        t.insert(0, "point", name)
        rows.append(t)
    table = pd.concat(rows, ignore_index=True)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(step_table(out["steps"]).to_string(float_format=lambda v: f"{v:.3g}"))
    for rep, host in out["host_s"].items():
        print(f"# rep {rep}: host-matched engine, {host * 1e3:.1f} ms per host-bound decode step")
    if a.csv:
        table.to_csv(a.csv, index=False, float_format="%.6g")
    if a.charts:
        from .charts import write_charts

        for path in write_charts(out, a.charts, a.chart_prefix):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
