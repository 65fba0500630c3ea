"""Run a sweep into a folder, resuming where an earlier run of the same sweep stopped."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..errors import ServesimError
from . import store
from .executors import Task, WorkerCrash, execute
from .rows import METRIC_COLUMNS
from .sweep import DEFAULT_MAX_POINTS, SweepSpec, expand
from .uncertainty import t_interval


@dataclass
class SweepReport:
    """What a sweep run did. ``crashed`` is set when workers died with points unfinished."""

    out_dir: Path
    points: int
    already_finished: int
    ran: int = 0
    failed: int = 0                       # finished points whose row has an error
    invalid: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    filtered_out: int = 0
    duplicates: int = 0
    stale_files: int = 0                  # point files in the folder from other sweeps (ignored)
    crashed: str | None = None

    @property
    def finished(self) -> int:
        return self.already_finished + self.ran


def run_sweep(spec: SweepSpec, base: dict[str, Any], out_dir: str | Path, *, executor: str = "local",
              workers: int = 1, max_points: int | None = DEFAULT_MAX_POINTS, skip_invalid: bool = False,
              overrides: dict[str, Any] | None = None, retry_errors: bool = False,
              progress: Callable[[int, int], None] | None = None, flush_every_s: float = 5.0) -> SweepReport:
    """Expand, validate and run the sweep's unfinished points; results go to ``out_dir``.

    Points already in ``out_dir/points/`` are not run again (with ``retry_errors``, those whose
    row has an error are). ``results.parquet`` is rewritten as points finish (at most every
    ``flush_every_s`` seconds) and at the end, also after Ctrl-C or a worker crash.
    """
    ex = expand(spec, base, max_points=max_points, overrides=overrides)
    n_valid = len({json.dumps(a, sort_keys=True, default=str) for a in (p.axes for p in ex.points)})
    if ex.invalid and not skip_invalid:
        axes, msg = ex.invalid[0]
        raise ServesimError(f"sweep point {_fmt(axes)}: {msg} ({len(ex.invalid)} of {len(ex.invalid) + n_valid} "
                            f"axis combinations invalid; pass --skip-invalid to run the rest)")
    if not ex.points:
        why = "every point is invalid" if ex.invalid else "the filters remove every point"
        raise ServesimError(f"filters: the sweep has no points to run ({why})")
    out = store.prepare(out_dir)
    store.atomic_write(out / "sweep.yaml", yaml.safe_dump(
        {**spec.model_dump(mode="json", exclude_none=True), "resolved_base": base}, sort_keys=False).encode())
    store.write_invalid(out, ex.invalid)
    on_disk = store.finished_rows(out)
    order = [p.key for p in ex.points]
    current = set(order)
    rows = {k: r for k, r in on_disk.items() if k in current and not (retry_errors and r.get("error"))}
    report = SweepReport(out, len(order), len(rows), invalid=ex.invalid, filtered_out=ex.filtered_out,
                         duplicates=ex.duplicates, stale_files=len(set(on_disk) - current))
    report.failed = sum(1 for r in rows.values() if r.get("error"))
    flusher = store.Flusher(out, ex.axes, rows, order, flush_every_s)
    tasks = [Task(p.key, p.scenario, p.axes, p.replication) for p in ex.points if p.key not in rows]
    if progress:
        progress(len(rows), len(order))

    def on_row(row: dict[str, Any]) -> None:
        if not (out / store.POINTS / f"{row['point']}.json").exists():  # Ray rows come back here
            store.write_point(out, row)
            store.journal(out, "done", row["point"], f"host={row.get('host')}")
        report.ran += 1
        report.failed += bool(row.get("error"))
        flusher.add(row)
        if progress:
            progress(len(rows), len(order))

    try:
        execute(tasks, on_row, executor, workers, str(out))
    except WorkerCrash as err:
        report.crashed = str(err)
    finally:
        flusher.maybe(force=True)
        if spec.replications > 1:
            write_aggregated(out, [rows[k] for k in order if k in rows], ex.axes)
    return report


def _fmt(axes: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in axes.items()) + "}"


def aggregate(rows: list[dict[str, Any]], axes: list[str], confidence: float = 0.95) -> pd.DataFrame:
    """One row per axis combination: replications, and per metric the mean (``<metric>``) and the
    half-width of its t-interval (``<metric>_ci``) over the replications without an error."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(json.dumps([r.get(a) for a in axes], default=str), []).append(r)
    out = []
    for members in groups.values():
        ok = [m for m in members if not m.get("error")]
        rec: dict[str, Any] = {a: members[0].get(a) for a in axes}
        rec["replications"], rec["errors"] = len(members), len(members) - len(ok)
        for c in METRIC_COLUMNS:
            if c == "stable":   # yes/no: the fraction of replications that were stable
                flags = [bool(m[c]) for m in ok if m.get(c) is not None]
                rec[c] = sum(flags) / len(flags) if flags else None
                continue
            vals = [float(m[c]) for m in ok if m.get(c) is not None]
            ci = t_interval(vals, confidence) if vals else {"mean": None, "half_width": None}
            rec[c], rec[f"{c}_ci"] = ci["mean"], ci["half_width"]
        out.append(rec)
    df = pd.DataFrame(out)
    for a in axes:  # mixed-type axes (e.g. mappings) as JSON text, as in results.parquet
        if df[a].map(lambda v: isinstance(v, (dict, list))).any():
            df[a] = df[a].map(lambda v: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
    return df


def write_aggregated(out: Path, rows: list[dict[str, Any]], axes: list[str]) -> Path | None:
    """``aggregated.parquet``: :func:`aggregate` of the finished rows (sweeps with replications)."""
    if not rows:
        return None
    path = out / "aggregated.parquet"
    aggregate(rows, axes).to_parquet(path, index=False)
    return path
