"""NCCL all-reduce, all-gather and all-to-all timings, one process per GPU (torch.distributed),
eager and replayed from a CUDA graph, for any group size.

``bytes`` is the message each GPU contributes (the all-reduce buffer, one GPU's all-gather
shard, one GPU's whole all-to-all send buffer); ``total_bytes``, algbw and busbw follow
nccl-tests: all-reduce and all-to-all size = bytes, all-gather size = gathered output
(bytes x gpus); busbw = algbw x 2(n-1)/n (all-reduce) or (n-1)/n (all-gather, all-to-all).
NVLink multicast (NVLS) stays off: the environment variables below are forced in every process.

The suite (``python -m calibration``) measures all-reduce and all-gather over powers of two;
``python -m simulator.calibration.collectives`` measures any collectives, group sizes and size grid into
one folder (used for the 4-GPU data in ``calibration/data/h200-sxm-x4``).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from simulator.errors import InputError, ServesimError, unknown_name

from .context import RunContext
from .io import open_log, percentiles
from .meta import base_meta, utc_now
from .shapes import COLL_SIZES
from .timing import capture_graph

SAFE_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
GRAPH_CALLS = 10        # collective calls captured per graph
COLLECTIVES = ("all_reduce", "all_gather")                  # what the suite measures
ALL_COLLECTIVES = ("all_reduce", "all_gather", "all_to_all")
MODES = ("eager", "graph")
#: 1 KiB .. 1 GiB per GPU in powers of 4 (11 sizes): the multi-GPU grid.
COLL_SIZES_POW4 = tuple(4 ** i * 1024 for i in range(11))
SIZE_GRIDS = {"pow2": COLL_SIZES, "pow4": COLL_SIZES_POW4}


def bus_factor_of(collective: str, gpus: int) -> float:
    """busbw / algbw as nccl-tests defines it (all_reduce, all_gather, all_to_all)."""
    if collective == "all_reduce":
        return 2.0 * (gpus - 1) / gpus
    if collective in ("all_gather", "all_to_all"):
        return (gpus - 1) / gpus
    raise InputError("collective", collective, f"allowed: {', '.join(ALL_COLLECTIVES)}")


def total_bytes_of(collective: str, nbytes: int, gpus: int) -> int:
    """nccl-tests' size of one call: the gathered output for all-gather, else the per-GPU message."""
    return nbytes * gpus if collective == "all_gather" else nbytes


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for the process group rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pending_points(out: Path, gpus: int, sizes: tuple[int, ...] = COLL_SIZES,
                   collectives: tuple[str, ...] = COLLECTIVES,
                   modes: tuple[str, ...] = MODES) -> list[tuple[str, int, str]]:
    """(collective, bytes, mode) not yet in collectives.csv for this group size."""
    log = open_log(out, "collectives")
    return [(c, b, m) for m in modes for c in collectives for b in sizes
            if not log.has({"collective": c, "gpus": gpus, "bytes": b, "mode": m})]


def _time_calls(fn: Any, reps: int, per: int, device: str) -> list[float]:
    """Seconds per collective call: CUDA events around each call (GPU) or wall clock (CPU)."""
    import torch

    if device != "cuda":
        out = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) / per)
        return out
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) * 1e-3 / per for s, e in zip(starts, ends)]


def _graph_times(call: Any, reps: int) -> list[float]:
    """Capture GRAPH_CALLS calls in a CUDA graph and time its replays (seconds per call)."""
    def calls() -> None:
        for _ in range(GRAPH_CALLS):
            call()
    g = capture_graph(calls, warm=call)
    return _time_calls(g.replay, max(5, reps // GRAPH_CALLS), GRAPH_CALLS, "cuda")


def _collective_call(coll: str, nbytes: int, world: int, dev: str, dtype: Any, elem: int) -> Any:
    """A closure running one ``coll`` of ``nbytes`` per rank on fresh random tensors."""
    import torch
    import torch.distributed as dist

    numel = max(1, nbytes // elem)
    if coll == "all_to_all":             # equal chunks, one per rank
        numel = max(world, numel - numel % world)
    x = torch.randn(numel, device=dev, dtype=dtype)
    y = (torch.empty(numel * world, device=dev, dtype=dtype) if coll == "all_gather"
         else torch.empty_like(x) if coll == "all_to_all" else None)

    def call() -> None:
        if coll == "all_reduce":
            dist.all_reduce(x)
        elif coll == "all_gather":
            dist.all_gather_into_tensor(y, x)
        else:
            dist.all_to_all_single(y, x)
    return call


def _row(coll: str, nbytes: int, world: int, mode: str, dtype: str, times: list[float], per: int) -> dict[str, Any]:
    """The collectives.csv row of one measured point."""
    med, p10, p90 = percentiles(times)
    total = total_bytes_of(coll, nbytes, world)
    algbw = total / med
    return {"collective": coll, "gpus": world, "bytes": nbytes, "total_bytes": total, "dtype": dtype, "mode": mode,
            "calls_per_graph": per if mode == "graph" else None, "seconds": med, "p10_s": p10, "p90_s": p90,
            "algbw_Bps": algbw, "busbw_Bps": algbw * bus_factor_of(coll, world), "repeats": len(times)}


def _worker(rank: int, world: int, port: int, out: str, points: list[tuple[str, int, str]],
            deadline_s: float, device: str = "cuda") -> None:
    """One rank: run every point in the same order on all ranks; rank 0 writes the rows.
    ``device='cpu'`` (gloo, fp32, wall clock, eager only) exists to test this logic without GPUs."""
    os.environ.update(SAFE_ENV)
    import datetime
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)   # all_gather_into_tensor naming

    import torch
    import torch.distributed as dist

    kw: dict[str, Any] = {}
    if device == "cuda":
        torch.cuda.set_device(rank)
        kw["device_id"] = torch.device("cuda", rank)
    dist.init_process_group("nccl" if device == "cuda" else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world, timeout=datetime.timedelta(seconds=120), **kw)
    dev = f"cuda:{rank}" if device == "cuda" else "cpu"
    dtype, elem = (torch.bfloat16, 2) if device == "cuda" else (torch.float32, 4)
    log = open_log(Path(out), "collectives") if rank == 0 else None
    t_end = time.monotonic() + deadline_s
    for coll, nbytes, mode in points:
        stop = torch.tensor([1 if time.monotonic() >= t_end else 0], device=dev)
        dist.all_reduce(stop, op=dist.ReduceOp.MAX)        # all ranks agree on stopping
        if stop.item():
            if rank == 0:
                print(f"[calibrate] collectives: out of time before {coll} {nbytes} {mode}", flush=True)
            break
        call = _collective_call(coll, nbytes, world, dev, dtype, elem)
        try:
            for _ in range(5):
                call()
            probe = _time_calls(call, 3, 1, device)
            reps_t = torch.tensor([int(min(100, max(10, 0.05 / max(percentiles(probe)[0], 1e-7))))],
                                  device=dev)
            dist.all_reduce(reps_t, op=dist.ReduceOp.MAX)    # same number of calls on every rank
            reps = int(reps_t.item())
            if mode == "eager":
                dist.barrier()
                times, per = _time_calls(call, reps, 1, device), 1
            else:
                dist.barrier()
                times, per = _graph_times(call, reps), GRAPH_CALLS
        except (RuntimeError, ValueError) as exc:
            if rank == 0:
                print(f"[calibrate] collectives {coll} {nbytes} {mode}: {exc}", flush=True)
            continue
        if log is not None:
            log.append(_row(coll, nbytes, world, mode, str(dtype).replace("torch.", ""), times, per))
    dist.barrier()
    dist.destroy_process_group()


def run_group(out: Path, world: int, points: list[tuple[str, int, str]], seconds: float,
              device: str = "cuda", log: Any = print) -> None:
    """Spawn ``world`` ranks that measure ``points``; stop them if they overrun ``seconds`` + 60."""
    import torch.multiprocessing as mp

    pc = mp.start_processes(_worker, args=(world, free_port(), str(out), points, seconds - 15, device),
                            nprocs=world, join=False, start_method="spawn")
    t_end = time.monotonic() + seconds + 60
    try:
        while not pc.join(timeout=2):
            if time.monotonic() > t_end:
                log(f"collectives {world} ranks: workers overran their time, stopping them")
                break
    except Exception as exc:     # a worker failed: keep the rows rank 0 already wrote
        log(f"collectives {world} ranks: worker failed: {str(exc).strip().splitlines()[-1]}")
    for p in pc.processes:
        if p.is_alive():
            p.terminate()


def run(ctx: RunContext) -> None:
    """Collectives over every power-of-two group of 2.. visible GPUs (GPU only)."""
    import torch

    os.environ.update(SAFE_ENV)
    n = torch.cuda.device_count() if ctx.device == "cuda" else 0
    if n < 2:
        ctx.log(f"collectives: skipped ({n} GPU visible; needs 2 or more)")
        return
    torch.cuda.empty_cache()
    groups = [g for g in (2, 4, 8, 16, 32) if g <= n]
    for world in groups:
        points = pending_points(ctx.out, world)
        left = ctx.time_left()
        if not points or left < 10:
            ctx.log(f"collectives {world} GPUs: {len(points)} points pending, {left:.0f} s left")
            continue
        ctx.log(f"collectives {world} GPUs: {len(points)} points")
        run_group(ctx.out, world, points, left / len(groups), "cuda", ctx.log)
        ctx.log(f"collectives {world} GPUs: {len(open_log(ctx.out, 'collectives'))} rows in collectives.csv")


def update_meta(path: Path, section: str, data: dict[str, Any], argv: list[str]) -> None:
    """Add ``section`` to meta.json in ``path``'s folder, creating it with the run's metadata first;
    an earlier run's section moves to ``<section>_previous``."""
    meta: dict[str, Any] = {}
    if path.exists():
        try:
            meta = json.loads(path.read_text())
        except json.JSONDecodeError:
            meta = {}
    if not meta:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        meta = base_meta("h200-sxm" if device == "cuda" else "cpu", device, [])
        meta["command"] = " ".join([sys.executable, *argv])
    if isinstance(meta.get(section), dict):          # an earlier run of the same section: keep it
        meta.setdefault(f"{section}_previous", []).append(meta[section])
    meta[section] = {**data, "command": " ".join([sys.executable, *argv]), "finished_utc": utc_now()}
    path.write_text(json.dumps(meta, indent=2, default=str) + "\n")


def _int_list(field: str, text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(field, text, "a comma-separated list of integers, e.g. 2,4") from None
    if not vals or min(vals) < 2:
        raise InputError(field, text, "group sizes of 2 or more GPUs, e.g. 2,4")
    return vals


def main(argv: list[str]) -> int:
    """``python -m simulator.calibration.collectives --out DIR --gpus 2,4``: returns 0, or 2 on bad input."""
    p = argparse.ArgumentParser(prog="python -m simulator.calibration.collectives",
                                description="NCCL collectives over several group sizes into DIR/collectives.csv")
    p.add_argument("--out", required=True)
    p.add_argument("--gpus", default="2,4", help="group sizes, comma-separated (one process per GPU)")
    p.add_argument("--sizes", default="pow4", help="pow4 (1 KiB..1 GiB, 11 sizes) or pow2 (21 sizes)")
    p.add_argument("--collectives", default=",".join(ALL_COLLECTIVES))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--max-bytes", type=int, default=2 ** 30, help="largest message per GPU")
    p.add_argument("--seconds", type=float, default=120.0, help="time for all groups together")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: gloo, eager only (tests)")
    try:
        args = p.parse_args(argv)
        groups = _int_list("--gpus", args.gpus)
        if args.sizes not in SIZE_GRIDS:
            raise unknown_name("--sizes", args.sizes, SIZE_GRIDS)
        colls = tuple(c.strip() for c in args.collectives.split(",") if c.strip())
        for c in colls:
            if c not in ALL_COLLECTIVES:
                raise unknown_name("--collectives", c, ALL_COLLECTIVES)
        modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
        for m in modes:
            if m not in MODES:
                raise unknown_name("--modes", m, MODES)
        if args.device == "cpu" and "graph" in modes:
            raise InputError("--modes", args.modes, "CUDA graphs need --device cuda; use --modes eager")
    except ServesimError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    os.environ.update(SAFE_ENV)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.device == "cuda":
        import torch

        n = torch.cuda.device_count()
        if max(groups) > n:
            print(f"[collectives] only {n} GPUs visible: groups above {n} skipped", flush=True)
            groups = tuple(g for g in groups if g <= n)
    started = utc_now()
    t_end = time.monotonic() + args.seconds
    done: dict[str, Any] = {}
    for i, world in enumerate(groups):
        sizes = tuple(b for b in SIZE_GRIDS[args.sizes] if b <= args.max_bytes)
        points = pending_points(out, world, sizes, colls, modes)
        left = t_end - time.monotonic()
        share = left / (len(groups) - i)
        print(f"[collectives] {world} GPUs: {len(points)} points, {share:.0f} s", flush=True)
        t0 = time.monotonic()
        if points and share > 20:
            run_group(out, world, points, share, args.device)
        done[str(world)] = {"points": len(points), "seconds": round(time.monotonic() - t0, 1)}
    print(f"[collectives] {len(open_log(out, 'collectives'))} rows in {out / 'collectives.csv'}", flush=True)
    section = {"started_utc": started, "groups": done, "sizes": args.sizes, "collectives": colls, "modes": modes,
               "env": SAFE_ENV}
    update_meta(out / "meta.json", "collectives", section, ["-m", "simulator.calibration.collectives", *argv])
    return 0


if __name__ == "__main__":
    from simulator.calibration import collectives as _self   # workers pickle functions of the package module

    sys.exit(_self.main(sys.argv[1:]))
