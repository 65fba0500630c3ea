"""``servesim calibrate`` / ``python -m calibration``: measure kernels on this machine's GPU (or CPU).

Writes one CSV per kernel kind plus ``meta.json`` and ``power.csv`` into ``--out``. Each row is
flushed as soon as it is measured; running the same command again resumes (rows already in a
CSV are skipped). A kind that fails is logged and the suite moves on. At the end the folder is
fitted into a complete GPU profile, ``<out>/<name>.yaml`` (calibration/user_profile.py).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from simulator.errors import InputError, ServesimError, unknown_name

from .context import CPU_BUDGET_S, GPU_BUDGET_S, RunContext
from .io import SCHEMAS, as_float, open_log, read_rows
from .meta import PowerSampler, base_meta, check_name, device_info, profile_name_for, utc_now, write_meta
from .timing import Bench, profile_kernels
from .user_profile import Datasheet, add_datasheet_args, datasheet_of, write as write_profile

KINDS = ("launch", "memory", "gemm", "attention_prefill", "attention_decode", "whole_model", "collectives")
ALIASES = {"attention": ("attention_prefill", "attention_decode")}
NO_TORCH = "torch is not installed: pip install 'servesim[calibrate]'"
NO_GPU = "no CUDA GPU is visible to torch: for a quick check on this machine run with --device cpu --quick"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ServesimError(f"servesim calibrate: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="servesim calibrate", description="Measure GPU kernels for servesim's time model.")
    p.add_argument("--out", required=True, help="output folder (CSVs, meta.json, power.csv)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny grid of each kind (about a minute)")
    p.add_argument("--name", help="GPU profile name for a GPU this suite does not recognise, e.g. my-gpu")
    p.add_argument("--only", help=f"comma-separated kinds: {', '.join(KINDS)} (or 'attention')")
    p.add_argument("--budget-scale", type=float, default=1.0, help="multiply every kind's time budget")
    p.add_argument("--max-seconds", type=float, default=520.0, help="no new point starts after this")
    add_datasheet_args(p)
    return p


def select_kinds(only: str | None) -> list[str]:
    """Kinds to run, in suite order; unknown names raise an InputError with suggestions."""
    if not only:
        return list(KINDS)
    wanted: set[str] = set()
    for part in (s.strip() for s in only.split(",")):
        if not part:
            continue
        if part in ALIASES:
            wanted.update(ALIASES[part])
        elif part in KINDS:
            wanted.add(part)
        else:
            raise unknown_name("--only", part, [*KINDS, *ALIASES])
    return [k for k in KINDS if k in wanted]


def _runners() -> dict[str, Callable[[RunContext], None]]:
    from . import (
        collectives,
        kernels_attention,
        kernels_gemm,
        kernels_memory,
        whole_model,
    )

    return {"launch": kernels_memory.run_launch, "memory": kernels_memory.run_memory,
            "gemm": kernels_gemm.run, "attention_prefill": kernels_attention.run_prefill,
            "attention_decode": kernels_attention.run_decode, "whole_model": whole_model.run,
            "collectives": collectives.run}


def resolve_name(device: str, device_name: str, name: str | None) -> str:
    """The profile name the data is filed under: --name, else the mapped GPU name."""
    if name:
        return check_name(name)
    if device == "cpu":
        return "cpu"
    mapped = profile_name_for(device_name)
    if mapped is None:
        raise InputError("GPU", device_name, "maps to no servesim profile: pass --name my-gpu")
    return mapped


def main(argv: list[str]) -> int:
    """Entry point; returns 0 when every kind ran, 1 when some failed, 2 on bad input."""
    try:
        return _main(argv)
    except ServesimError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rows measured so far are kept; run the same command to resume", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    kinds = select_kinds(args.only)
    sheet = datasheet_of(args)
    if args.budget_scale <= 0:
        raise InputError("--budget-scale", args.budget_scale, "must be a positive number")
    if importlib.util.find_spec("torch") is None:
        print(NO_TORCH, file=sys.stderr)
        return 2
    try:
        import torch
    except ImportError:
        print(NO_TORCH, file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print(NO_GPU, file=sys.stderr)
        return 2
    device_name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    name = resolve_name(args.device, device_name, args.name)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    code = run_suite(args, kinds, name, out)
    return max(code, finish_profile(out, name, sheet))


def finish_profile(out: Path, name: str, sheet: Datasheet) -> int:
    """Fit what was measured into ``out/<name>.yaml``; 0 when written, 1 when the fit failed."""
    try:
        path = write_profile(out, name, sheet)
    except ServesimError as err:
        print(f"no profile written: {err}; the measurements are kept: fix and run servesim calibrate fit {out}",
              file=sys.stderr)
        return 1
    print(f"wrote {path}: use it with --gpu {path} or --set deployment.gpu={path}", file=sys.stderr)
    return 0


def run_suite(args: argparse.Namespace, kinds: list[str], name: str, out: Path) -> int:
    """Run the selected kinds into ``out``; returns the exit code."""
    import torch

    t_start = time.monotonic()
    dev = args.device
    info = device_info(dev)
    bench = Bench(dev, l2_bytes=info.get("l2_bytes") or 50 * 2 ** 20)
    sampler = PowerSampler(open_log(out, "power")) if dev == "cuda" else None
    base = GPU_BUDGET_S if dev == "cuda" and not args.quick else CPU_BUDGET_S
    ctx = RunContext(out=out, device=dev, quick=args.quick, bench=bench, sampler=sampler,
                     budgets={k: v * args.budget_scale for k, v in base.items()},
                     deadline=t_start + args.max_seconds)
    meta: dict[str, Any] = {**base_meta(name, dev, _argv_of(args)), "quick": args.quick,
                            "kinds_requested": kinds}
    if sampler is not None:
        meta["gpu_state"] = sampler.static_info()
        sampler.start()
    write_meta(out / "meta.json", meta)
    ctx.log(f"calibrating {name} ({info.get('name')}) on {dev} into {out}: {', '.join(kinds)}")
    if dev == "cuda":
        try:
            profile_kernels(lambda i: torch.ones(8, device="cuda").add_(1), 2)   # CUPTI start-up
        except Exception as exc:
            ctx.log(f"profiler unavailable, kernel_s will be empty: {exc}")
    runners = _runners()
    status: dict[str, Any] = {}
    failed = False
    for kind in kinds:
        if kind == "collectives" and dev != "cuda":
            status[kind] = {"status": "skipped: GPU only"}
            continue
        ctx.begin(kind)
        t0 = time.monotonic()
        try:
            runners[kind](ctx)
            status[kind] = {"status": "ok"}
        except Exception as exc:  # one failing kind must not stop the suite
            failed = True
            ctx.log(f"{kind} FAILED: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=ctx.stream)
            status[kind] = {"status": f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
        status[kind]["seconds"] = round(time.monotonic() - t0, 1)
        if dev == "cuda":
            torch.cuda.empty_cache()
    if sampler is not None:
        sampler.phase = "end"
        meta["gpu_state"]["at_end"] = sampler.read()
        sampler.stop()
    meta.update(kinds=status, notes=ctx.notes, finished_utc=utc_now(),
                seconds=round(time.monotonic() - t_start, 1),
                profiler={"seconds": round(bench.profile_s, 2), "errors": bench.profile_errors[:5]},
                timing={"target_s": bench.target_s, "min_reps": bench.min_reps, "max_reps": bench.max_reps,
                        "profile_below_s": bench.profile_below_s, "queue_below_s": bench.queue_below_s,
                        "spin_hz": bench.spin_hz, "rotation_bytes": bench.rotation_bytes})
    write_meta(out / "meta.json", meta)
    for line in summary(out):
        ctx.log(line)
    ctx.log(f"done in {meta['seconds']} s: " + ", ".join(f"{k} {v['status']} ({v.get('seconds', 0)} s)"
                                                         for k, v in status.items()))
    return 1 if failed else 0


def _argv_of(args: argparse.Namespace) -> list[str]:
    """The options as given (for meta.json)."""
    parts = ["--out", str(args.out), "--device", args.device]
    if args.quick:
        parts.append("--quick")
    for opt in ("name", "only"):
        if getattr(args, opt):
            parts += [f"--{opt}", getattr(args, opt)]
    if args.budget_scale != 1.0:
        parts += ["--budget-scale", str(args.budget_scale)]
    parts += ["--max-seconds", str(args.max_seconds)]
    return parts


def summary(out: Path) -> list[str]:
    """Row counts and headline rates (best achieved TFLOP/s and TB/s) of the CSVs in ``out``."""
    lines = []
    for name in SCHEMAS:
        path = out / f"{name}.csv"
        if not path.exists():
            continue
        rows = read_rows(path)
        text = f"{name}.csv: {len(rows)} rows"
        if rows and "flops" in rows[0] and "event_s" in rows[0]:
            best_f = max((as_float(r["flops"]) / as_float(r["event_s"]) for r in rows), default=0.0)
            best_b = max((as_float(r["bytes"]) / as_float(r["event_s"]) for r in rows), default=0.0)
            text += f"; best {best_f / 1e12:.1f} TFLOP/s, best {best_b / 1e12:.2f} TB/s"
        lines.append(text)
    return lines
