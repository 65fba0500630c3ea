"""The resumable CSV writer: append + flush, resume by key, partial last lines, schema checks."""
from __future__ import annotations

import csv

import pytest

from simulator.calibration.io import SCHEMAS, CsvLog, fmt, open_log, percentiles, read_rows
from simulator.errors import InputError


def _gemm_row(m: int) -> dict[str, object]:
    return {"op": "matmul", "dtype": "bf16", "m": m, "k": 4096, "n": 6144, "flops": 2.0 * m * 4096 * 6144,
            "bytes": 2.0 * (m * 4096 + 4096 * 6144 + m * 6144), "event_s": 1.5e-5, "repeats": 10}


def test_rows_are_written_at_once_and_resume_skips_them(tmp_path):
    log = open_log(tmp_path, "gemm")
    log.append(_gemm_row(1))
    log.append(_gemm_row(2))
    # readable by another reader before anything is closed: each row is flushed
    rows = read_rows(tmp_path / "gemm.csv")
    assert [r["m"] for r in rows] == ["1", "2"]
    again = open_log(tmp_path, "gemm")
    assert len(again) == 2
    assert again.has({"op": "matmul", "dtype": "bf16", "m": 2, "k": 4096, "n": 6144})
    assert not again.has({"op": "matmul", "dtype": "bf16", "m": 4, "k": 4096, "n": 6144})
    # float keys written as integers match int keys
    assert again.has({"op": "matmul", "dtype": "bf16", "m": 2.0, "k": 4096, "n": 6144})


def test_partial_last_line_from_a_killed_run_is_dropped(tmp_path):
    log = open_log(tmp_path, "gemm")
    log.append(_gemm_row(1))
    with (tmp_path / "gemm.csv").open("a") as f:
        f.write("matmul,bf16,2,4096,61")          # killed mid-row
    again = open_log(tmp_path, "gemm")
    assert len(again) == 1
    again.append(_gemm_row(2))
    with (tmp_path / "gemm.csv").open() as f:
        lines = list(csv.reader(f))
    assert len(lines) == 3 and all(len(r) == len(SCHEMAS["gemm"].columns) for r in lines)


def test_other_columns_refuse_to_resume(tmp_path):
    (tmp_path / "gemm.csv").write_text("op,m\nmatmul,1\n")
    with pytest.raises(InputError, match="fresh --out"):
        open_log(tmp_path, "gemm")


def test_unknown_column_is_an_error(tmp_path):
    log = CsvLog(tmp_path / "x.csv", SCHEMAS["launch"])
    with pytest.raises(KeyError):
        log.append({"op": "a", "mode": "eager", "bogus": 1})


def test_fmt_and_percentiles():
    assert fmt(None) == "" and fmt(float("nan")) == "" and fmt(3.0) == "3" and fmt(True) == "true"
    assert fmt(1.23456789e-5) == "1.23457e-05"
    med, p10, p90 = percentiles([float(i) for i in range(11)])   # 0..10
    assert (med, p10, p90) == (5.0, 1.0, 9.0)
