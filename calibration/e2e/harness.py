"""End-to-end measurement: a real continuous-batching engine under the same workloads servesim replays.

Runs Hugging Face transformers' continuous batching (paged KV cache, ``paged|sdpa`` attention,
eager kernels) on a catalog model built from its config with random bf16 weights (no download),
with every request's output length forced (``max_new_tokens`` = target, EOS off). One command::

    PYTHONPATH=. python -m calibration.e2e.harness --out DIR [--rates 0.5,1,1.5] [--concurrencies 4,16]

writes, appending and flushing every row as it is measured:

- ``requests.csv``: one row per request and repeat (arrival, admission, first and last token,
  completion, token times after the first in ms);
- ``steps.csv``: one row per engine step of the load points (the batch's shape, wall and host time);
- ``profile_steps.csv``, ``profile_kernels.csv``: the per-step profile (:mod:`.stepprofile`);
- ``points.csv`` and ``meta.json``: the points, engine settings as the engine resolved them,
  versions, device, notes.

Each point runs in its own try/except; a total deadline (``--deadline-s``) stops new points and
cancels requests still running. ``--tiny --device cpu`` runs the same code path in a minute on a CPU.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .engine import EngineSettings, StepLog, build_manager, resolved_settings, run_point
from .stepprofile import measure_batches
from .workload import LENGTHS_CSV, OUTPUT_CAP, PROMPT_CAP, plan_points, point_lengths, poisson_arrivals, read_lengths

REQUEST_FIELDS = ("point", "kind", "rep", "i", "request_id", "prompt_tokens", "output_tokens", "generated_tokens",
                  "scheduled_s", "arrival_s", "created_s", "admitted_s", "first_token_s", "last_token_s",
                  "finished_s", "received_s", "error", "token_offsets_ms")
STEP_FIELDS = ("point", "rep", "step", "t_s", "wall_s", "fwd_host_s", "update_end_s", "seqs", "prefill_seqs",
               "prefill_tokens", "prefill_pairs", "prefill_kv", "decode_seqs", "decode_ctx")
PROFILE_FIELDS = ("run", "batch", "step", "errors", "t_s", "wall_s", "fwd_host_s", "update_end_s", "seqs",
                  "prefill_seqs", "prefill_tokens", "prefill_pairs", "prefill_kv", "decode_seqs", "decode_ctx",
                  "kernels", "kernel_s", "gemm_s", "attention_s", "gather_s", "copy_s", "other_s")
KERNEL_FIELDS = ("batch", "kind", "name", "count", "total_s")
POINT_FIELDS = ("name", "kind", "requests", "offset", "rate", "concurrency", "seed", "rep", "started_s",
                "wall_s", "completed", "errors")


class Csv:
    """Append rows to a CSV, flushed row by row (header written once)."""

    def __init__(self, path: Path, fields: tuple[str, ...]) -> None:
        new = not path.exists() or path.stat().st_size == 0
        self.f = open(path, "a", newline="", encoding="utf-8")
        self.w = csv.DictWriter(self.f, fieldnames=fields, extrasaction="ignore")
        if new:
            self.w.writeheader()

    def write(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.w.writerow({k: _fmt(v) for k, v in r.items()})
        self.f.flush()


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}" if abs(v) < 1e-3 and v != 0 else f"{v:.7f}".rstrip("0").rstrip(".")
    return v


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m calibration.e2e.harness", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--tiny", action="store_true", help="a 2-layer model (CPU check of the code path)")
    p.add_argument("--rates", default="0.6,1.2,1.8", help="Poisson rates, req/s, comma-separated")
    p.add_argument("--concurrencies", default="4,16", help="closed-loop clients, comma-separated")
    p.add_argument("--requests-open", type=int, default=60, help="requests per Poisson point")
    p.add_argument("--requests-closed", type=int, default=48, help="requests per closed-loop point")
    p.add_argument("--reps", type=int, default=2, help="repeats of every point (all points, then again)")
    p.add_argument("--deadline-s", type=float, default=400.0, help="no new point after this, running ones cancelled")
    p.add_argument("--profile-batches", default="1,8,32", help="batch sizes of the step profile ('' to skip)")
    p.add_argument("--profile-prompt", type=int, default=1024)
    p.add_argument("--profile-output", type=int, default=48)
    p.add_argument("--block-size", type=int, default=EngineSettings.block_size)
    p.add_argument("--num-blocks", type=int, default=EngineSettings.num_blocks)
    p.add_argument("--max-batch-tokens", type=int, default=EngineSettings.max_batch_tokens)
    p.add_argument("--max-batch-size", type=int, default=EngineSettings.max_batch_size)
    p.add_argument("--no-cudnn-sdpa", action="store_true",
                   help="disable torch's cuDNN SDPA backend (checks whether its per-shape plans set the host time)")
    p.add_argument("--lengths", type=Path, default=LENGTHS_CSV)
    p.add_argument("--length-scale", type=float, default=1.0, help="multiply lengths (CPU checks only)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    t_start = time.perf_counter()
    deadline = t_start + a.deadline_s
    a.out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []

    def say(msg: str) -> None:
        line = f"[{time.perf_counter() - t_start:7.1f}s] {msg}"
        print(line, flush=True)
        notes.append(line)

    import torch

    from simulator.calibration.meta import device_info, utc_now, versions
    from simulator.calibration.shapes import MODELS, TINY
    from simulator.calibration.whole_model import build

    if a.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device visible", file=sys.stderr)
        return 2
    if a.no_cudnn_sdpa:
        torch.backends.cuda.enable_cudnn_sdp(False)
    spec = TINY if a.tiny else MODELS["llama-3.1-8b"]
    prompt, output = read_lengths(a.lengths)
    if a.length_scale != 1.0:
        prompt = (prompt * a.length_scale).clip(1).astype(int)
        output = (output * a.length_scale).clip(1).astype(int)
    points = plan_points(_floats(a.rates), [int(c) for c in _floats(a.concurrencies)], a.requests_open,
                         a.requests_closed, len(prompt))
    settings = EngineSettings(a.block_size, a.num_blocks, a.max_batch_tokens, a.max_batch_size)
    meta: dict[str, Any] = {"started_utc": utc_now(), "command": " ".join([sys.executable, "-m", "calibration.e2e.harness",
                                                                          *(argv if argv is not None else sys.argv[1:])]),
                            "model": spec.name, "weights": "random bf16 from config (no download)",
                            "device": device_info(a.device), "versions": versions(), "requested": settings.row(),
                            "lengths": str(a.lengths.name), "length_scale": a.length_scale,
                            "caps": {"prompt": PROMPT_CAP, "output": OUTPUT_CAP},
                            "cudnn_sdpa": not a.no_cudnn_sdpa, "notes": notes}
    say(f"model {spec.name} on {meta['device'].get('name')}; {len(points)} points x {a.reps} repeats")
    model = build(spec, a.device)
    vocab = spec.vocab
    say("model built")
    mgr = build_manager(model, settings)
    meta["engine"] = resolved_settings(mgr)
    say(f"engine: {meta['engine']}")
    log = StepLog()
    log.attach(mgr)
    mgr.start()
    files = {"req": Csv(a.out / "requests.csv", REQUEST_FIELDS), "steps": Csv(a.out / "steps.csv", STEP_FIELDS),
             "pts": Csv(a.out / "points.csv", POINT_FIELDS)}
    try:
        _run_all(a, mgr, log, points, prompt, output, vocab, deadline, files, say)
    finally:
        mgr.stop(block=True, timeout=30, hard_stop=True)
        meta["finished_utc"] = utc_now()
        meta["elapsed_s"] = time.perf_counter() - t_start
        (a.out / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    say("done")
    return 0


def _run_all(a: argparse.Namespace, mgr: Any, log: StepLog, points: list, prompt: Any, output: Any, vocab: int,
             deadline: float, files: dict[str, Csv], say: Any) -> None:
    import numpy as np

    from .workload import Point

    warm = Point("warmup", "closed", 4, 0, concurrency=4)
    try:
        run_point(mgr, warm, np.full(4, 256), np.full(4, 8), None, vocab, 0, deadline)
        say("warm-up done")
    except Exception as e:
        say(f"warm-up failed: {type(e).__name__}: {e}")
    batches = tuple(int(b) for b in _floats(a.profile_batches))
    if batches:
        try:
            rows, names, pnotes = measure_batches(mgr, log, vocab, batches, a.profile_prompt, a.profile_output,
                                                  deadline, a.device == "cuda")
            Csv(a.out / "profile_steps.csv", PROFILE_FIELDS).write(rows)
            Csv(a.out / "profile_kernels.csv", KERNEL_FIELDS).write(names)
            for line in pnotes:
                say(line)
        except Exception as e:
            say(f"step profile failed: {type(e).__name__}: {e}\n{traceback.format_exc()}")
    for rep in range(a.reps):
        for pt in points:
            if deadline - time.perf_counter() < 15:
                say(f"skipped {pt.name} rep {rep}: deadline")
                continue
            try:
                p, o = point_lengths(pt, prompt, output)
                arr = poisson_arrivals(pt.rate, pt.requests, pt.seed) if pt.kind == "poisson" else None
                start = len(log.steps)
                t = time.perf_counter()
                rows, t0 = run_point(mgr, pt, p, o, arr, vocab, rep, deadline)
                wall = time.perf_counter() - t
                time.sleep(0.2)   # let the last update land in the step log
                files["req"].write(rows)
                files["steps"].write([{"point": pt.name, "rep": rep, "step": i, **s}
                                      for i, s in enumerate(log.rows(start, len(log.steps), t0))])
                errors = sum(1 for r in rows if r.get("error"))
                files["pts"].write([{**pt.as_row(), "rep": rep, "started_s": t0 - log.t_origin, "wall_s": wall,
                                     "completed": len(rows) - errors, "errors": errors}])
                say(f"{pt.name} rep {rep}: {len(rows) - errors}/{len(rows)} done in {wall:.1f} s"
                    + _summary(rows))
            except Exception as e:  # one failed point must not end the run
                say(f"{pt.name} rep {rep} failed: {type(e).__name__}: {e}\n{traceback.format_exc()}")


def _summary(rows: list[dict[str, Any]]) -> str:
    import numpy as np

    ok = [r for r in rows if not r.get("error")]
    if not ok:
        return ""
    ttft = np.array([r["first_token_s"] - r["arrival_s"] for r in ok])
    e2e = np.array([r["last_token_s"] - r["arrival_s"] for r in ok])
    return (f"; TTFT p50 {np.median(ttft):.3f} s p99 {np.percentile(ttft, 99):.3f} s; "
            f"E2E p50 {np.median(e2e):.2f} s p99 {np.percentile(e2e, 99):.2f} s")


if __name__ == "__main__":
    sys.exit(main())
