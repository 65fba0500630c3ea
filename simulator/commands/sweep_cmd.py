"""``servesim sweep``: run a grid of scenarios in parallel into a resumable results folder."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .registry import print_json, subcommand


@subcommand
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a sweep file (axes of scenario values) in parallel; resumable")
    p.add_argument("sweep", help="sweep YAML file (base or base_file, axes, filters, replications)")
    p.add_argument("--out", required=True, help="results folder (rerun the same command to resume)")
    p.add_argument("--executor", default="local", help="local (process pool, default) | ray")
    p.add_argument("--workers", type=int, help="parallel worker processes (default: all CPUs)")
    p.add_argument("--max-points", type=int, default=10_000, help="refuse larger sweeps without --yes")
    p.add_argument("--yes", action="store_true", help="run however many points the sweep has")
    p.add_argument("--skip-invalid", action="store_true", help="skip points that fail validation")
    p.add_argument("--retry-errors", action="store_true", help="run finished points whose row has an error again")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key of the base scenario")
    p.add_argument("--dry-run", action="store_true", help="expand and validate, print the point count, run nothing")
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(a: argparse.Namespace) -> int:
    from ..config.loader import parse_set
    from ..errors import InputError
    from ..planning.executors import default_workers
    from ..planning.runner import run_sweep
    from ..planning.sweep import expand, load_sweep

    if a.max_points is not None and a.max_points < 1:
        raise InputError("--max-points", a.max_points, "must be an integer >= 1")
    spec, base = load_sweep(a.sweep)
    max_points = None if a.yes else a.max_points
    overrides = parse_set(a.set)
    if a.dry_run:
        ex = expand(spec, base, max_points=max_points, overrides=overrides)
        info = {"points": len(ex.points), "invalid": len(ex.invalid), "filtered_out": ex.filtered_out,
                "duplicates": ex.duplicates, "axes": ex.axes,
                "first_invalid": [{"axes": x, "error": e} for x, e in ex.invalid[:5]]}
        print_json(info) if a.json else print(
            f"{info['points']} points ({info['invalid']} invalid, {info['filtered_out']} filtered out, "
            f"{info['duplicates']} duplicates) over axes {', '.join(ex.axes)}")
        return 0
    workers = a.workers if a.workers is not None else default_workers()
    show = not a.no_progress and not a.json and sys.stderr.isatty()
    try:
        with points_progress(show) as tick:
            rep = run_sweep(spec, base, a.out, executor=a.executor, workers=workers, max_points=max_points,
                            skip_invalid=a.skip_invalid, overrides=overrides, retry_errors=a.retry_errors,
                            progress=tick)
    except KeyboardInterrupt:
        print(f"servesim: finished points are saved in {a.out}; rerun the same command to resume", file=sys.stderr)
        raise
    out = {"out": str(rep.out_dir), "points": rep.points, "finished": rep.finished,
           "already_finished": rep.already_finished, "ran": rep.ran, "failed": rep.failed,
           "invalid": len(rep.invalid), "filtered_out": rep.filtered_out, "duplicates": rep.duplicates,
           "stale_files": rep.stale_files, "crashed": rep.crashed,
           "results": str(rep.out_dir / "results.parquet")}
    if a.json:
        print_json(out)
    else:
        print(f"{rep.finished} of {rep.points} points finished ({rep.already_finished} from an earlier run, "
              f"{rep.ran} now; {rep.failed} with an error) -> {out['results']}")
        if rep.invalid:
            print(f"skipped {len(rep.invalid)} invalid points (see {rep.out_dir}/invalid.json); "
                  f"first: {rep.invalid[0][1]}")
        if rep.stale_files:
            print(f"ignored {rep.stale_files} point files in {rep.out_dir}/points from a different sweep")
    if rep.crashed:
        print(f"servesim: {rep.crashed}; finished points are saved; rerun the same command to resume",
              file=sys.stderr)
        return 1
    return 0


@contextmanager
def points_progress(enabled: bool, label: str = "sweep", unit: str = "pts"
                    ) -> Iterator[Callable[[int, int], None] | None]:
    """``tick(done, total)`` driving a rich bar with items done, rate (``unit``/s) and ETA (None when disabled)."""
    if not enabled:
        yield None
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), transient=False) as prog:
        task = prog.add_task(label, total=None, rate="")
        state = {"first": None}

        def tick(done: int, total: int) -> None:
            if state["first"] is None:
                state["first"] = done   # points resumed from disk do not count towards the rate
            prog.update(task, completed=done, total=total)
            t = prog.tasks[0]
            ran = done - state["first"]
            elapsed = t.elapsed or 0.0
            rate = f"{ran / elapsed:.2f} {unit}/s" if ran and elapsed > 0 else ""
            prog.update(task, rate=rate)

        yield tick
