"""Readers for recorded request traces, and for one column of lengths.

- Azure LLM inference trace CSV (Patel et al., Splitwise, ISCA 2024): columns ``TIMESTAMP``
  (wall clock, 100 ns resolution), ``ContextTokens``, ``GeneratedTokens``.
- Mooncake JSONL (Qin et al., FAST 2025): one object per line with ``timestamp`` (ms since the
  trace start), ``input_length``, ``output_length`` and optional ``hash_ids`` (ids of 512-token
  prefix blocks).

Errors name the file and, for a bad value, its 1-based line number in the file. Readers are cached
on (path, modification time, size), so sweeps read each file once.
"""
from __future__ import annotations

import functools
import io
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from simulator.errors import InputError
from simulator.inputs import MAX_TRACE_BYTES, check_path, load_json, read_text
from simulator.workload.table import PREFIX_BLOCK_TOKENS, RequestTable, take_ragged

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MOONCAKE_KEYS = ("timestamp", "input_length", "output_length")
TraceFormat = Literal["azure", "mooncake", "auto"]
_EXTENSIONS = {".csv": "azure", ".jsonl": "mooncake"}
_LIMIT = 2.0**53  # largest value that float64 (and so the readers) hold exactly


# ---------------------------------------------------------------- helpers


def _existing(path: Path, field: str) -> Path:
    path = check_path(path, field)
    if not path.is_file():
        raise InputError(field, str(path), "no such file")
    return path


def _file_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def _check_numbers(
    values: np.ndarray, originals: object, where: Callable[[int], str], column: str, minimum: float, integral: bool
) -> None:
    """Raise for the first value that is not finite, below ``minimum``, too large, or (if ``integral``) fractional."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values < minimum) | (values >= _LIMIT)
        if integral:
            bad |= np.floor(values) != values
    if bad.any():
        i = int(np.argmax(bad))
        kind = "an integer" if integral else "a number"
        allowed = f"{column} must be {kind} >= {minimum:g}"
        if np.isfinite(values[i]) and values[i] >= _LIMIT:
            allowed = f"{column} must be below 2^53"
        raise InputError(where(i), originals[i], allowed)  # type: ignore[index]


def _read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """All columns as strings; blank lines kept so that row i is on line i + 2. The file is read as
    JSONL traces are (:func:`simulator.inputs.read_text`: at most ``MAX_TRACE_BYTES``, UTF-8, a
    leading byte-order mark dropped)."""
    text = read_text(path, str(path), MAX_TRACE_BYTES)
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, skip_blank_lines=False, keep_default_na=False)
    except pd.errors.ParserError as err:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if m:
            raise InputError(f"{path}:{m.group(2)}", f"{m.group(3)} fields", f"rows need {m.group(1)} fields, as the header") from None
        raise InputError(str(path), str(err).strip().splitlines()[-1], "must be a well-formed CSV file") from None
    except pd.errors.EmptyDataError as err:
        raise InputError(str(path), type(err).__name__, "must be a CSV file with a header row") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(str(path), f"columns {list(df.columns)}", f"missing column(s) {', '.join(missing)}")
    return df


def _json_lines(path: Path) -> tuple[list[dict], np.ndarray]:
    """The JSON objects of a JSONL file and their 1-based line numbers (blank lines skipped)."""
    records: list[dict] = []
    lines: list[int] = []
    text = read_text(path, str(path), MAX_TRACE_BYTES)
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = load_json(line, f"{path}:{number}")
        except InputError as err:
            if "nested deeper" in str(err):
                raise
            obj = None
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{number}", line[:80], "each line must be one JSON object")
        records.append(obj)
        lines.append(number)
    return records, np.asarray(lines, dtype=np.int64)


def _json_numbers(records: list[dict], key: str, path: Path, lines: np.ndarray) -> tuple[np.ndarray, list]:
    """Values of ``key`` as float64 (NaN where not a JSON number), and the raw values."""
    raw = []
    for i, rec in enumerate(records):
        if key not in rec:
            raise InputError(f"{path}:{lines[i]}", sorted(rec), f"missing key {key}")
        raw.append(rec[key])
    nums = np.array([_as_float(v) for v in raw], dtype=np.float64)
    return nums, raw


def _as_float(v: object) -> float:
    """A JSON number as float64: NaN for non-numbers, +-inf for integers beyond float range."""
    if type(v) is float:
        return v
    if type(v) is int:
        return float(v) if abs(v) < 2**63 else (np.inf if v > 0 else -np.inf)
    return np.nan


def _sorted_table(
    arrival_s: np.ndarray, prompt: np.ndarray, output: np.ndarray, offsets: np.ndarray | None, ids: np.ndarray | None
) -> RequestTable:
    """Rows in time order (stable, so ties keep file order)."""
    order = np.argsort(arrival_s, kind="stable")
    notes: tuple[str, ...] = ()
    if np.any(np.diff(arrival_s) < 0):
        notes = ("trace rows were not in time order; sorted by timestamp",)
    if offsets is not None and ids is not None:
        offsets, ids = take_ragged(offsets, ids, order)
    return RequestTable(
        arrival_s=arrival_s[order],
        prompt_tokens=prompt[order],
        output_tokens=output[order],
        block_offsets=offsets,
        block_ids=ids,
        prefix_block_tokens=PREFIX_BLOCK_TOKENS,
        notes=notes,
    )


# ---------------------------------------------------------------- readers


@functools.lru_cache(maxsize=16)
def _azure(key: tuple[str, int, int]) -> RequestTable:
    path = Path(key[0])
    df = _read_csv(path, AZURE_COLUMNS)

    def where(i: int) -> str:
        return f"{path}:{i + 2}"  # the header is line 1

    # Times without a zone (as in the published traces) are read as UTC; only differences matter.
    stamps = pd.to_datetime(df["TIMESTAMP"].str.strip(), format="ISO8601", errors="coerce", utc=True)
    bad = stamps.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(where(i), df["TIMESTAMP"].iloc[i], "TIMESTAMP must be a date-time like 2023-11-16 18:17:03.9799600")
    ns = stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    lengths = []
    for column in AZURE_COLUMNS[1:]:
        text = df[column].to_numpy(dtype=object)
        values = pd.to_numeric(df[column].str.strip(), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        _check_numbers(values, text, where, column, 1, integral=True)
        lengths.append(values.astype(np.int64))
    arrival = (ns - ns.min()).astype(np.float64) / 1e9 if len(ns) else np.empty(0)
    return _sorted_table(arrival, lengths[0], lengths[1], None, None)


@functools.lru_cache(maxsize=16)
def _mooncake(key: tuple[str, int, int]) -> RequestTable:
    path = Path(key[0])
    records, lines = _json_lines(path)
    if records:
        missing = [k for k in MOONCAKE_KEYS if k not in records[0]]
        if missing:
            raise InputError(str(path), f"keys {sorted(records[0])}", f"missing column(s) {', '.join(missing)}")

    def where(i: int) -> str:
        return f"{path}:{lines[i]}"

    columns = []
    for key_name, minimum, integral in (("timestamp", 0, False), ("input_length", 1, True), ("output_length", 1, True)):
        values, raw = _json_numbers(records, key_name, path, lines)
        _check_numbers(values, raw, where, key_name, minimum, integral)
        columns.append(values)
    offsets = ids = None
    if records and "hash_ids" in records[0]:
        hashes = []
        for i, rec in enumerate(records):
            h = rec.get("hash_ids")
            if type(h) is not list or not all(type(x) is int and -2**63 <= x < 2**63 for x in h):
                raise InputError(where(i), h, "hash_ids must be a list of integers in [-2^63, 2^63)")
            hashes.append(h)
        offsets = np.zeros(len(hashes) + 1, dtype=np.int64)
        np.cumsum([len(h) for h in hashes], out=offsets[1:])
        ids = np.fromiter(itertools.chain.from_iterable(hashes), dtype=np.int64, count=int(offsets[-1]))
    arrival = columns[0] / 1000.0
    return _sorted_table(arrival, columns[1].astype(np.int64), columns[2].astype(np.int64), offsets, ids)


def detect_format(path: Path) -> Literal["azure", "mooncake"]:
    """``azure`` for ``.csv``, ``mooncake`` for ``.jsonl``."""
    fmt = _EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError("format", "auto", f"cannot tell the format of {path}; name it .csv or .jsonl, or set format")
    return fmt  # type: ignore[return-value]


def read_azure_trace(path: Path, *, field: str = "path") -> RequestTable:
    """An Azure LLM inference trace CSV as a table; arrival times are seconds after the earliest row."""
    return _azure(_file_key(_existing(path, field)))


def read_mooncake_trace(path: Path, *, field: str = "path") -> RequestTable:
    """A Mooncake JSONL trace as a table, with ``hash_ids`` as ragged prefix blocks of 512 tokens."""
    return _mooncake(_file_key(_existing(path, field)))


def read_trace(path: Path, format: TraceFormat = "auto", *, field: str = "path") -> RequestTable:
    """A trace file in the given format (``auto``: by extension), rows sorted by arrival time."""
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "azure":
        return read_azure_trace(path, field=field)
    if fmt == "mooncake":
        return read_mooncake_trace(path, field=field)
    raise InputError("format", format, "must be one of azure, mooncake, auto")


@functools.lru_cache(maxsize=32)
def _column(key: tuple[str, int, int], column: str) -> np.ndarray:
    path = Path(key[0])
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        records, lines = _json_lines(path)
        if records and column not in records[0]:
            raise InputError(str(path), f"keys {sorted(records[0])}", f"missing column(s) {column}")
        values, raw = _json_numbers(records, column, path, lines)
        line_no, sep = lines, ":"
    elif suffix == ".parquet":
        df = _read_parquet(path)
        if column not in df.columns:
            raise InputError(str(path), f"columns {list(df.columns)}", f"missing column(s) {column}")
        raw = df[column].to_numpy(dtype=object)
        values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        line_no, sep = np.arange(1, len(df) + 1), " row "
    else:
        df = _read_csv(path, (column,))
        raw = df[column].to_numpy(dtype=object)
        values = pd.to_numeric(df[column].str.strip(), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        line_no, sep = np.arange(2, len(df) + 2), ":"  # the header is line 1

    def where(i: int) -> str:
        return f"{path}{sep}{line_no[i]}"

    _check_numbers(values, raw, where, column, 1, integral=True)
    out = values.astype(np.int64)
    out.setflags(write=False)
    return out


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, TypeError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(str(path), type(err).__name__, "must be a readable Parquet file "
                         f"({' '.join(str(err).split())[:120]})") from None


def read_length_column(path: Path, column: str, *, field: str = "path") -> np.ndarray:
    """One column of token counts (int64, read-only) from a CSV, JSONL or Parquet file."""
    path = _existing(path, field)
    if path.suffix.lower() not in (".csv", ".jsonl", ".parquet"):
        raise InputError(field, str(path), "must be a .csv, .jsonl or .parquet file")
    return _column(_file_key(path), column)
