"""Time a tensor-parallel forward step of a 70B-class model (calibration/tp_model.py) at TP 1, 2, 4...

One process per GPU (torch.multiprocessing, NCCL; gloo and wall clock on ``--device cpu``). The TP
groups are ranks 0..tp-1 of one world; ranks outside a group wait at a barrier. Each GPU holds
``layers_measured`` distinct layers (8 by default); a step is embed -> layers -> head, with CUDA
events between the three segments, and the layer segment is scaled to the model's 80 layers:
step_s = embed + head + layers x 80 / layers_measured. Every rep starts after a synchronize and a
barrier of the TP group. Modes: ``eager`` (every kernel launched from Python) and, for decode,
``graph`` (the three segments captured as CUDA graphs and replayed). Kernel times come from
torch.profiler on the layer segment and on embed + head, run separately and scaled the same way:
``comm_s`` sums NCCL kernels (which include time spent waiting for the other ranks), ``compute_s``
every other kernel. Rank 0 writes every row to tp_step.csv as soon as it is measured, and the
kernels by name to tp_step_kernels.csv. NVLink multicast stays off (collectives.SAFE_ENV).
"""
from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from simulator.errors import InputError, ServesimError, unknown_name

from simulator.calibration.collectives import SAFE_ENV, free_port, update_meta
from simulator.calibration.io import CsvLog, Schema, percentiles
from .tp_model import MODELS, TPDecoder, TPModel

N_LAYERS_MEASURED = 8
PREFILL_POINTS: tuple[tuple[int, int], ...] = ((1, 512), (4, 2048))          # (batch, seq)
DECODE_POINTS: tuple[tuple[int, int], ...] = ((1, 1024), (32, 1024), (128, 2048))  # (batch, context)
PROFILE_CALLS = 3

TP_STEP = Schema("tp_step", (
    "tp", "phase", "batch", "seq_or_context", "layers_measured", "layers_model", "step_s", "comm_s",
    "compute_s", "mode", "step_p10_s", "step_p90_s", "measured_step_s", "layer_s", "outside_s", "kernels",
    "repeats", "model", "dtype"), ("tp", "phase", "batch", "seq_or_context", "mode", "layers_measured"))
TP_KERNELS = Schema("tp_step_kernels", (
    "tp", "phase", "batch", "seq_or_context", "mode", "layers_measured", "segment", "kernel", "count", "total_s"),
    ("tp", "phase", "batch", "seq_or_context", "mode", "layers_measured", "segment", "kernel"))


def scale_to_model(outside: float, layers: float, measured: int, model_layers: int) -> float:
    """A per-step quantity of the whole model from its outside-the-layers part and its layer part."""
    return outside + layers * model_layers / measured


def is_annotation(name: str) -> bool:
    """Profiler ranges drawn on the GPU timeline that are not kernels: user annotations and c10d's
    'nccl:all_reduce'-style ranges, which span the NCCL kernel and would count it twice."""
    return name.startswith(("gpu_user_annotation", "nccl:"))


def is_comm_kernel(name: str) -> bool:
    """NCCL kernels (all-reduce, all-gather, ...) are communication; everything else is compute."""
    return "nccl" in name.lower()


def default_points() -> list[tuple[str, int, int]]:
    """(phase, batch, seq or context) in measuring order: decode first, then prefill."""
    return [("decode", b, c) for b, c in DECODE_POINTS] + [("prefill", b, s) for b, s in PREFILL_POINTS]


def parse_points(text: str) -> list[tuple[str, int, int]]:
    """'decode:32x1024,prefill:4x2048' -> [('decode', 32, 1024), ('prefill', 4, 2048)]."""
    out = []
    for part in (t.strip() for t in text.split(",") if t.strip()):
        try:
            phase, shape = part.split(":")
            b, n = (int(v) for v in shape.lower().split("x"))
        except ValueError:
            raise InputError("--points", part, "write PHASE:BATCHxN, e.g. decode:32x1024,prefill:4x2048") from None
        if phase not in ("decode", "prefill"):
            raise unknown_name("--points", phase, ("decode", "prefill"))
        if b < 1 or n < 1:
            raise InputError("--points", part, "batch and sequence/context must be positive")
        out.append((phase, b, n))
    if not out:
        raise InputError("--points", text, "at least one point, e.g. decode:32x1024")
    return out


# ---- timing ---------------------------------------------------------------------------------
class _Runner:
    """Runs the three segments eagerly or from CUDA graphs and times them."""

    def __init__(self, model: TPDecoder, ids: Any, mode: str, device: str, group: Any) -> None:
        self.model, self.ids, self.mode, self.device, self.group = model, ids, mode, device, group
        self.x0 = model.embed(ids)
        self.x1 = model.run_layers(self.x0)
        self.graphs: list[Any] = []
        if mode == "graph":
            self._capture()

    def _capture(self) -> None:
        import torch

        m = self.model
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                m.head(m.run_layers(m.embed(self.ids)))
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        graphs = [torch.cuda.CUDAGraph() for _ in range(3)]
        with torch.cuda.graph(graphs[0]):
            self.x0 = m.embed(self.ids)
        with torch.cuda.graph(graphs[1]):
            self.x1 = m.run_layers(self.x0)
        with torch.cuda.graph(graphs[2]):
            self.out = m.head(self.x1)
        self.graphs = graphs
        torch.cuda.synchronize()

    def segments(self) -> tuple[Any, Any, Any]:
        if self.graphs:
            return self.graphs[0].replay, self.graphs[1].replay, self.graphs[2].replay
        m = self.model
        return (lambda: m.embed(self.ids), lambda: m.run_layers(self.x0), lambda: m.head(self.x1))

    def _sync(self) -> None:
        import torch
        import torch.distributed as dist

        if self.device == "cuda":
            torch.cuda.synchronize()
        if self.group is not None:
            dist.barrier(group=self.group)
            if self.device == "cuda":
                torch.cuda.synchronize()

    def time_steps(self, reps: int) -> list[tuple[float, float, float]]:
        """(embed, layers, head) seconds of ``reps`` steps."""
        import torch

        segs = self.segments()
        out = []
        for _ in range(reps):
            self._sync()
            if self.device == "cuda":
                ev = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
                ev[0].record()
                for i, seg in enumerate(segs):
                    seg()
                    ev[i + 1].record()
                torch.cuda.synchronize()
                out.append(tuple(ev[i].elapsed_time(ev[i + 1]) * 1e-3 for i in range(3)))
            else:
                t = [time.perf_counter()]
                for seg in segs:
                    seg()
                    t.append(time.perf_counter())
                out.append(tuple(t[i + 1] - t[i] for i in range(3)))
        return out  # type: ignore[return-value]

    def profile(self, which: str) -> dict[str, tuple[int, float]]:
        """Kernels per call by name, (count, seconds), of the 'layers' or 'outside' segments."""
        import torch
        from torch.profiler import ProfilerActivity, profile

        emb, lay, head = self.segments()
        calls = [lay] if which == "layers" else [emb, head]
        self._sync()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(PROFILE_CALLS):
                for c in calls:
                    c()
            torch.cuda.synchronize()
        by: dict[str, tuple[int, float]] = {}
        for e in prof.events():
            if e.device_type != torch.autograd.DeviceType.CUDA or is_annotation(e.name):
                continue
            n, t = by.get(e.name, (0, 0.0))
            by[e.name] = (n + 1, t + (e.time_range.end - e.time_range.start) * 1e-6)
        return {k: (n / PROFILE_CALLS, t / PROFILE_CALLS) for k, (n, t) in by.items()}


def measure_point(model: TPDecoder, phase: str, batch: int, soc: int, mode: str, device: str, group: Any,
                  layers_model: int, log: CsvLog | None, klog: CsvLog | None) -> dict[str, Any]:
    """Measure one point; rank 0 (``log`` given) writes the rows. Returns the row."""
    model.set_shape(phase, batch, soc)
    run = _Runner(model, model.token_ids(), mode, device, group)
    run.time_steps(2)                                            # warm-up
    est = sum(run.time_steps(1)[0])
    reps = int(min(30, max(10, 1.0 / max(est, 1e-6))))
    times = run.time_steps(reps)
    lm = len(model.layers)
    steps = [scale_to_model(e + h, lay, lm, layers_model) for e, lay, h in times]
    med, p10, p90 = percentiles(steps)
    row: dict[str, Any] = {
        "tp": model.tp, "phase": phase, "batch": batch, "seq_or_context": soc, "layers_measured": lm,
        "layers_model": layers_model, "step_s": med, "mode": mode, "step_p10_s": p10, "step_p90_s": p90,
        "measured_step_s": percentiles([sum(t) for t in times])[0],
        "layer_s": percentiles([t[1] for t in times])[0] / lm,
        "outside_s": percentiles([t[0] + t[2] for t in times])[0], "repeats": reps,
        "model": model.m.name, "dtype": str(model.dtype).replace("torch.", "")}
    if device == "cuda":
        prof = {w: run.profile(w) for w in ("layers", "outside")}
        tot = {w: {"comm": sum(t for k, (_, t) in p.items() if is_comm_kernel(k)),
                   "compute": sum(t for k, (_, t) in p.items() if not is_comm_kernel(k)),
                   "kernels": sum(n for n, _ in p.values())} for w, p in prof.items()}
        if tot["layers"]["kernels"] > 0:
            for key, col in (("comm", "comm_s"), ("compute", "compute_s"), ("kernels", "kernels")):
                row[col] = scale_to_model(tot["outside"][key], tot["layers"][key], lm, layers_model)
        if klog is not None:
            for seg, p in prof.items():
                for name, (n, t) in sorted(p.items(), key=lambda kv: -kv[1][1]):
                    klog.append({"tp": model.tp, "phase": phase, "batch": batch, "seq_or_context": soc,
                                 "mode": mode, "layers_measured": lm, "segment": seg, "kernel": name[:300],
                                 "count": n, "total_s": t})
    if log is not None:
        log.append(row)
    return row


# ---- workers ----------------------------------------------------------------------------------
def _agree_stop(t_end: float, device: str, group: Any) -> bool:
    """All ranks of ``group`` agree whether time is up (None: this rank alone)."""
    import torch
    import torch.distributed as dist

    flag = torch.tensor([1 if time.monotonic() >= t_end else 0], device=device)
    if group is not None:
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=group)
    return bool(flag.item())


def _run_tp(rank: int, tp: int, group: Any, spec: TPModel, cfg: dict[str, Any], t_end: float) -> None:
    import torch

    dev = f"cuda:{rank}" if cfg["device"] == "cuda" else "cpu"
    dtype = torch.bfloat16 if cfg["device"] == "cuda" else torch.float32
    out = Path(cfg["out"])
    log = CsvLog(out / "tp_step.csv", TP_STEP) if rank == 0 else None
    klog = CsvLog(out / "tp_step_kernels.csv", TP_KERNELS) if rank == 0 else None
    t0 = time.monotonic()
    model = TPDecoder(spec, tp, rank, cfg["layers"], dev, dtype, group)
    if rank == 0:
        print(f"[tp_step] tp={tp}: {cfg['layers']} layers built in {time.monotonic() - t0:.1f} s", flush=True)
    for phase, batch, soc, mode in cfg["todo"][tp]:
        if _agree_stop(t_end, dev, group):
            if rank == 0:
                print(f"[tp_step] tp={tp}: out of time before {phase} {batch}x{soc} {mode}", flush=True)
            return
        t0 = time.monotonic()
        try:
            row = measure_point(model, phase, batch, soc, mode, cfg["device"], group, spec.layers, log, klog)
        except (RuntimeError, ValueError) as exc:
            if rank == 0:
                print(f"[tp_step] tp={tp} {phase} {batch}x{soc} {mode} FAILED: {exc}", flush=True)
            continue
        finally:
            model.cache = []
            if cfg["device"] == "cuda":
                torch.cuda.empty_cache()
        if rank == 0:
            print(f"[tp_step] tp={tp} {phase} {batch}x{soc} {mode}: step {row['step_s'] * 1e3:.2f} ms "
                  f"(comm {1e3 * (row.get('comm_s') or float('nan')):.2f} ms) in {time.monotonic() - t0:.1f} s",
                  flush=True)


def _worker(rank: int, world: int, port: int, cfg: dict[str, Any]) -> None:
    """One rank: every TP size in turn (largest first); ranks outside the group wait at a barrier."""
    os.environ.update(SAFE_ENV)
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)   # all_gather_into_tensor naming
    import torch
    import torch.distributed as dist

    kw: dict[str, Any] = {}
    if cfg["device"] == "cuda":
        torch.cuda.set_device(rank)
        kw["device_id"] = torch.device("cuda", rank)
    dist.init_process_group("nccl" if cfg["device"] == "cuda" else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world, timeout=datetime.timedelta(seconds=300), **kw)
    groups = {tp: (dist.new_group(list(range(tp))) if 1 < tp < world else dist.group.WORLD if tp > 1 else None)
              for tp in cfg["tps"]}
    spec = MODELS[cfg["model"]]
    t_end = time.monotonic() + cfg["seconds"]
    for tp in cfg["tps"]:
        if rank < tp:
            try:
                _run_tp(rank, tp, groups[tp], spec, cfg, t_end)
            except Exception as exc:          # log and go on to the next TP size
                print(f"[tp_step] rank {rank} tp={tp} FAILED: {type(exc).__name__}: {exc}", flush=True)
            if cfg["device"] == "cuda":
                torch.cuda.empty_cache()
        if tp != cfg["tps"][-1] and world > 1:
            dist.barrier()
    (Path(cfg["done_dir"]) / f"rank{rank}").touch()   # every row of this rank is written
    if world > 1:
        dist.barrier()
    dist.destroy_process_group()


def pending(log: CsvLog, tp: int, layers: int, pts: list[tuple[str, int, int]], device: str
            ) -> list[tuple[str, int, int, str]]:
    """(phase, batch, seq or context, mode) of ``pts`` not yet in tp_step.csv: every point eagerly, then
    (GPUs only) the decode points from CUDA graphs."""
    todo = [(ph, b, n, "eager") for ph, b, n in pts]
    if device == "cuda":
        todo += [(ph, b, n, "graph") for ph, b, n in pts if ph == "decode"]
    return [t for t in todo if not log.has({"tp": tp, "phase": t[0], "batch": t[1], "seq_or_context": t[2],
                                             "mode": t[3], "layers_measured": layers})]


def run(out: Path, tps: tuple[int, ...], seconds: float, device: str = "cuda", model: str = "llama-3.1-70b",
        layers: int = N_LAYERS_MEASURED, pts: list[tuple[str, int, int]] | None = None) -> None:
    """Spawn max(tps) ranks that measure every point; stop them if they overrun ``seconds`` + 60."""
    import torch.multiprocessing as mp

    world = max(tps)
    log = CsvLog(out / "tp_step.csv", TP_STEP)
    todo = {tp: pending(log, tp, layers, pts or default_points(), device) for tp in tps}
    done = Path(tempfile.mkdtemp(prefix="tp_step_done_"))
    cfg = {"out": str(out), "tps": tuple(sorted(tps, reverse=True)), "seconds": seconds, "device": device,
           "model": model, "layers": layers, "todo": todo, "done_dir": str(done)}
    pc = mp.start_processes(_worker, args=(world, free_port(), cfg), nprocs=world, join=False, start_method="spawn")
    t_end = time.monotonic() + seconds + 60
    try:
        while not pc.join(timeout=2):
            if len(list(done.iterdir())) == world:      # all ranks finished measuring: allow a clean exit
                t_end = min(t_end, time.monotonic() + 15)
            if time.monotonic() > t_end:
                print("[tp_step] workers did not exit in time, stopping them", flush=True)
                break
    except Exception as exc:     # a worker failed: keep the rows rank 0 already wrote
        print(f"[tp_step] worker failed: {str(exc).strip().splitlines()[-1]}", flush=True)
    for p in pc.processes:
        if p.is_alive():
            p.terminate()
    shutil.rmtree(done, ignore_errors=True)


def main(argv: list[str]) -> int:
    """``python -m calibration.tp_step --out DIR``: returns 0, or 2 on bad input."""
    p = argparse.ArgumentParser(prog="python -m calibration.tp_step",
                                description="Tensor-parallel forward step timings into DIR/tp_step.csv")
    p.add_argument("--out", required=True)
    p.add_argument("--tps", default="4,2,1", help="TP sizes, comma-separated; max(tps) processes")
    p.add_argument("--layers", type=int, default=N_LAYERS_MEASURED, help="distinct layers built per GPU")
    p.add_argument("--model", default="llama-3.1-70b", help=f"one of {', '.join(MODELS)}")
    p.add_argument("--points", help="PHASE:BATCHxN list, e.g. decode:32x1024,prefill:4x2048 (default: the grid)")
    p.add_argument("--seconds", type=float, default=240.0, help="no new point starts after this")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: gloo, fp32, wall clock")
    try:
        args = p.parse_args(argv)
        if args.model not in MODELS:
            raise unknown_name("--model", args.model, MODELS)
        try:
            tps = tuple(int(v) for v in args.tps.split(",") if v.strip())
        except ValueError:
            raise InputError("--tps", args.tps, "a comma-separated list of integers, e.g. 4,2,1") from None
        if not tps or min(tps) < 1:
            raise InputError("--tps", args.tps, "positive integers, e.g. 4,2,1")
        if args.layers < 1:
            raise InputError("--layers", args.layers, "must be a positive integer")
        pts = parse_points(args.points) if args.points else default_points()
        if args.device == "cuda":
            import torch

            if torch.cuda.device_count() < max(tps):
                raise InputError("--tps", args.tps, f"needs {max(tps)} GPUs; {torch.cuda.device_count()} visible")
    except ServesimError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    os.environ.update(SAFE_ENV)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from simulator.calibration.meta import utc_now

    started = utc_now()
    run(out, tps, args.seconds, args.device, args.model, args.layers, pts)
    update_meta(out / "meta.json", "tp_step", {
        "started_utc": started, "tps": tps, "layers_measured": args.layers, "model": args.model,
        "env": SAFE_ENV, "points": pts}, ["-m", "calibration.tp_step", *argv])
    return 0


if __name__ == "__main__":
    from calibration import tp_step as _self   # workers pickle functions of the package module

    sys.exit(_self.main(sys.argv[1:]))
