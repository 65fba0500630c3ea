"""On-disk state of a sweep, safe to interrupt at any moment.

``DIR/points/<key>.json``  one file per finished point, written atomically (temp file + rename)
                          by whichever process ran it; a point is finished iff its file exists.
``DIR/journal.log``        one line per event (``start``/``done`` with point key, pid, time), appended.
``DIR/results.parquet``    every finished point of the current sweep, one row each, rewritten
                          atomically from memory on each flush.
``DIR/invalid.json``       points that failed validation, with the reason.
"""
from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from .rows import METRIC_COLUMNS

POINTS = "points"
RESULTS = "results.parquet"
JOURNAL = "journal.log"
FIXED = ("point", "replication", "seed")
TAIL = ("error", "error_kind", "host", "pid", "wall_s", "finished_at")


def now_iso() -> str:
    """The current UTC time, ISO 8601 with microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never part."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def journal(out_dir: str | Path, event: str, key: str, extra: str = "") -> None:
    """Append one line to the journal (a single small write, so concurrent appends do not mix)."""
    line = f"{now_iso()} {event} {key} host={socket.gethostname()} pid={os.getpid()}{' ' + extra if extra else ''}\n"
    with open(Path(out_dir) / JOURNAL, "a", encoding="utf-8") as fh:
        fh.write(line)


def write_point(out_dir: str | Path, row: dict[str, Any]) -> Path:
    """Record a finished point (its row) as ``points/<key>.json``."""
    path = Path(out_dir) / POINTS / f"{row['point']}.json"
    atomic_write(path, json.dumps(row, default=_json_default, allow_nan=True).encode())
    return path


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def prepare(out_dir: str | Path) -> Path:
    """Create the output folder and its ``points/`` folder (an error if it is a file), and remove the
    temporary files of writes that a killed run left half done (one sweep writes a folder at a time)."""
    d = Path(out_dir)
    if d.exists() and not d.is_dir():
        raise InputError("--out", str(d), "must be a folder (it is a file)")
    (d / POINTS).mkdir(parents=True, exist_ok=True)
    for tmp in stale_temp_files(d):
        tmp.unlink(missing_ok=True)
    return d


def stale_temp_files(out_dir: Path) -> list[Path]:
    """Temporary files of :func:`atomic_write` (``.NAME.XXXX``) and :func:`write_results`
    (``.results.XXXX.parquet``) in ``out_dir`` and its points folder."""
    top = [p for p in out_dir.glob(".*") if p.name.startswith((".results.", ".sweep.yaml.", ".invalid.json."))]
    return [p for p in top + list((out_dir / POINTS).glob(".*.json.*")) if p.is_file()]


def finished_rows(out_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Rows of the points already finished in ``out_dir`` (unreadable files are ignored)."""
    rows: dict[str, dict[str, Any]] = {}
    for p in sorted((Path(out_dir) / POINTS).glob("*.json")):
        try:
            row = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a point whose file is damaged counts as not finished
        if isinstance(row, dict) and row.get("point") == p.stem:
            rows[p.stem] = row
    return rows


def frame(rows: list[dict[str, Any]], axes: list[str]) -> pd.DataFrame:
    """Rows as a table: point, replication, seed, the axes, the metrics, then error and bookkeeping."""
    cols = list(FIXED) + [a for a in axes if a not in FIXED] + list(METRIC_COLUMNS) + list(TAIL)
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)
    for a in axes:
        if a in FIXED:
            continue
        vals = [v for v in df[a] if v is not None]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)
        if not (numeric or all(isinstance(v, bool) for v in vals) or all(isinstance(v, str) for v in vals)):
            df[a] = [None if v is None else (v if isinstance(v, str) else json.dumps(v, sort_keys=True))
                     for v in df[a]]
    for c in METRIC_COLUMNS:
        if c != "stable":
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    df["stable"] = df["stable"].astype("boolean")
    return df


def write_results(out_dir: str | Path, rows: list[dict[str, Any]], axes: list[str]) -> Path:
    """Rewrite ``results.parquet`` from ``rows`` atomically."""
    path = Path(out_dir) / RESULTS
    df = frame(rows, axes)
    fd, tmp = tempfile.mkstemp(prefix=".results.", suffix=".parquet", dir=path.parent)
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_invalid(out_dir: str | Path, invalid: list[tuple[dict[str, Any], str]]) -> Path | None:
    """Record the points that failed validation (or remove a stale record when there are none)."""
    path = Path(out_dir) / "invalid.json"
    if not invalid:
        path.unlink(missing_ok=True)
        return None
    atomic_write(path, json.dumps([{"axes": a, "error": e} for a, e in invalid], indent=1,
                                  default=_json_default).encode())
    return path


class Flusher:
    """Rewrites ``results.parquet`` at most every ``every_s`` seconds (and when forced)."""

    def __init__(self, out_dir: Path, axes: list[str], rows: dict[str, dict[str, Any]], order: list[str],
                 every_s: float) -> None:
        self.out_dir, self.axes, self.rows, self.every_s = out_dir, axes, rows, every_s
        self.order = order
        self.last = -math.inf
        self.dirty = True

    def add(self, row: dict[str, Any]) -> None:
        self.rows[row["point"]] = row
        self.dirty = True
        self.maybe()

    def maybe(self, force: bool = False) -> None:
        if self.dirty and (force or time.monotonic() - self.last >= self.every_s):
            write_results(self.out_dir, [self.rows[k] for k in self.order if k in self.rows], self.axes)
            self.last, self.dirty = time.monotonic(), False
