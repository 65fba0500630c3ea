"""CSV schemas of the calibration data and an append-only, resumable CSV writer.

Every measured row is appended and flushed at once, so an interrupted run keeps what it
measured; a restarted run skips rows whose key columns are already in the file.
No torch here: this module is used by the fit and by tests without torch.
"""
from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import InputError

#: Columns shared by every kernel CSV (times in seconds; clocks read while the row was measured).
TIMING = ("event_s", "event_p10_s", "event_p90_s", "kernel_s", "kernels_per_call",
          "repeats", "buffers", "queued", "sm_clock_mhz", "power_w")


@dataclass(frozen=True)
class Schema:
    """Column names of one CSV and the columns that identify a row (for resuming)."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]


SCHEMAS: dict[str, Schema] = {s.name: s for s in (
    Schema("gemm", ("op", "dtype", "m", "k", "n", "flops", "bytes", *TIMING, "impl", "shapes"),
           ("op", "dtype", "m", "k", "n")),
    Schema("attention_prefill",
           ("op", "dtype", "batch", "q_heads", "kv_heads", "head_dim", "new_tokens", "prefix", "kv_len",
            "causal_pairs", "flops", "bytes", *TIMING, "backend", "gqa", "mask"),
           ("op", "batch", "q_heads", "kv_heads", "head_dim", "new_tokens", "prefix")),
    Schema("attention_decode",
           ("op", "dtype", "batch", "q_heads", "kv_heads", "head_dim", "kv_len", "flops", "bytes",
            *TIMING, "backend", "gqa"),
           ("op", "batch", "q_heads", "kv_heads", "head_dim", "kv_len")),
    Schema("memory", ("op", "dtype", "numel", "hidden", "flops", "bytes", *TIMING, "impl"),
           ("op", "dtype", "numel", "hidden")),
    Schema("launch", ("op", "mode", "launches", "event_s", "event_p10_s", "event_p90_s", "kernel_s",
                      "repeats"),
           ("op", "mode")),
    Schema("collectives", ("collective", "gpus", "bytes", "total_bytes", "dtype", "mode", "calls_per_graph",
                           "seconds", "p10_s", "p90_s", "algbw_Bps", "busbw_Bps", "repeats"),
           ("collective", "gpus", "bytes", "mode")),
    Schema("whole_model", ("model", "phase", "batch", "seq", "context", "tokens", "logits", "cache_fill",
                           "wall_s", "wall_p10_s", "wall_p90_s", "kernel_s", "kernels", "repeats",
                           "params", "attn_impl", "dtype"),
           ("model", "phase", "batch", "seq", "context")),
    Schema("whole_model_kernels", ("model", "phase", "batch", "seq", "context", "kernel", "count",
                                   "total_s"),
           ("model", "phase", "batch", "seq", "context", "kernel")),
    Schema("power", ("t_s", "phase", "sm_clock_mhz", "mem_clock_mhz", "power_w", "temp_c", "util_pct",
                     "throttle_reasons"),
           ("t_s",)),
)}


def fmt(value: object) -> str:
    """Canonical text of a CSV cell: '' for None/NaN, integers plainly, floats to 6 significant digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


class CsvLog:
    """Append-only CSV with resume: ``has(row)`` tells whether a row's key was already written."""

    def __init__(self, path: Path, schema: Schema) -> None:
        self.path = Path(path)
        self.schema = schema
        self._keys: set[tuple[str, ...]] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            self._load_existing()
        else:
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(schema.columns)

    def _load_existing(self) -> None:
        text = self.path.read_text()
        if not text.endswith("\n"):
            # a run killed mid-write leaves a partial last line: drop it
            text = text[: text.rfind("\n") + 1]
            self.path.write_text(text)
        rows = list(csv.reader(text.splitlines()))
        if not rows or tuple(rows[0]) != self.schema.columns:
            raise InputError(f"{self.schema.name}.csv", str(self.path),
                             "it has other columns than this version writes; use a fresh --out directory")
        idx = [self.schema.columns.index(c) for c in self.schema.key]
        for r in rows[1:]:
            if len(r) == len(self.schema.columns):
                self._keys.add(tuple(r[i] for i in idx))

    def key(self, row: Mapping[str, object]) -> tuple[str, ...]:
        """The canonical key of a row (or of a partial row holding at least the key columns)."""
        return tuple(fmt(row[c]) for c in self.schema.key)

    def has(self, row: Mapping[str, object]) -> bool:
        return self.key(row) in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def append(self, row: Mapping[str, object]) -> None:
        """Write one row now (flushed); unknown columns are an error, missing ones are left empty."""
        extra = set(row) - set(self.schema.columns)
        if extra:
            raise KeyError(f"{self.schema.name}: unknown columns {sorted(extra)}")
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([fmt(row.get(c)) for c in self.schema.columns])
            f.flush()
            os.fsync(f.fileno())
        self._keys.add(self.key(row))


def open_log(out_dir: Path, name: str) -> CsvLog:
    """The resumable CSV ``<out_dir>/<name>.csv`` with its registered schema."""
    return CsvLog(Path(out_dir) / f"{name}.csv", SCHEMAS[name])


def read_rows(path: Path) -> list[dict[str, str]]:
    """All complete rows of a calibration CSV as dicts of strings."""
    with Path(path).open(newline="") as f:
        reader = csv.DictReader(f)
        return [r for r in reader if None not in r.values() and None not in r]


def as_float(value: str) -> float:
    """A CSV cell as float; NaN for an empty cell."""
    return float(value) if value not in ("", None) else math.nan


def percentiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """(median, p10, p90) of a sample list."""
    xs = sorted(samples)
    if not xs:
        return (math.nan, math.nan, math.nan)

    def q(p: float) -> float:
        pos = p * (len(xs) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    return (q(0.5), q(0.1), q(0.9))
