"""NCCL all-reduce and all-gather timings, one process per GPU (torch.distributed), eager and
replayed from a CUDA graph.

``bytes`` is the message each GPU contributes (the all-reduce buffer, or one GPU's all-gather
shard); ``total_bytes``, algbw and busbw follow nccl-tests: all-reduce size = buffer,
all-gather size = gathered output (bytes x gpus); busbw = algbw x 2(n-1)/n (all-reduce) or
(n-1)/n (all-gather). NVLink multicast (NVLS) stays off: the environment variables below are
forced in every process.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from .context import RunContext
from .io import open_log, percentiles
from .shapes import COLL_SIZES, bus_factor

SAFE_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
GRAPH_CALLS = 10        # collective calls captured per graph
COLLECTIVES = ("all_reduce", "all_gather")
MODES = ("eager", "graph")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pending_points(out: Path, gpus: int, sizes: tuple[int, ...] = COLL_SIZES) -> list[tuple[str, int, str]]:
    """(collective, bytes, mode) not yet in collectives.csv for this group size."""
    log = open_log(out, "collectives")
    return [(c, b, m) for m in MODES for c in COLLECTIVES for b in sizes
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
    import torch

    g = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        call()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    with torch.cuda.graph(g):
        for _ in range(GRAPH_CALLS):
            call()
    g.replay()
    torch.cuda.synchronize()
    return _time_calls(g.replay, max(5, reps // GRAPH_CALLS), GRAPH_CALLS, "cuda")


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
        numel = max(1, nbytes // elem)
        x = torch.randn(numel, device=dev, dtype=dtype)
        y = torch.empty(numel * world, device=dev, dtype=dtype) if coll == "all_gather" else None

        def call(x: Any = x, y: Any = y, coll: str = coll) -> None:
            if coll == "all_reduce":
                dist.all_reduce(x)
            else:
                dist.all_gather_into_tensor(y, x)
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
        except RuntimeError as exc:
            if rank == 0:
                print(f"[calibrate] collectives {coll} {nbytes} {mode}: {exc}", flush=True)
            continue
        if log is not None:
            med, p10, p90 = percentiles(times)
            total = nbytes if coll == "all_reduce" else nbytes * world
            algbw = total / med
            log.append({"collective": coll, "gpus": world, "bytes": nbytes, "total_bytes": total,
                        "dtype": str(dtype).replace("torch.", ""), "mode": mode,
                        "calls_per_graph": per if mode == "graph" else None,
                        "seconds": med, "p10_s": p10, "p90_s": p90, "algbw_Bps": algbw,
                        "busbw_Bps": algbw * bus_factor(coll, world), "repeats": len(times)})
    dist.barrier()
    dist.destroy_process_group()


def run_group(out: Path, world: int, points: list[tuple[str, int, str]], seconds: float,
              device: str = "cuda", log: Any = print) -> None:
    """Spawn ``world`` ranks that measure ``points``; stop them if they overrun ``seconds`` + 60."""
    import torch.multiprocessing as mp

    pc = mp.start_processes(_worker, args=(world, _free_port(), str(out), points, seconds - 15, device),
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
