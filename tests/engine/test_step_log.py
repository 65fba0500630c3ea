"""The step log: typed rows in, numpy columns out, sorted by end time."""
import numpy as np

from simulator.engine.step_log import COLUMNS, StepLog, StepRow


def row(t_start: float, t_end: float, steps: int = 1) -> StepRow:
    return StepRow(t_start=t_start, t_end=t_end, replica=2, steps=steps, decode_seqs=7, prefill_tokens=300,
                   dt_first=0.01, dt_last=0.012, flops=1.5e12, bytes=2.5e9, running=8, waiting=3, kv_blocks=41)


def test_the_columns_are_the_row_fields_in_order():
    assert COLUMNS == StepRow._fields
    assert COLUMNS[:2] == ("t_start", "t_end") and len(COLUMNS) == 13


def test_rows_come_back_as_typed_columns_sorted_by_end_time():
    log = StepLog()
    log.add(row(1.0, 3.0, steps=5))
    log.add(row(0.5, 2.0))
    assert len(log) == 2
    f = log.frame()
    assert list(f["t_end"]) == [2.0, 3.0]
    assert list(f["steps"]) == [1, 5]
    assert f["replica"].dtype == np.int32 and f["steps"].dtype == np.int64 and f["flops"].dtype == np.float64
    first = row(0.5, 2.0)
    assert [f[c][0] for c in COLUMNS] == list(first)


def test_an_empty_log_has_empty_columns():
    f = StepLog().frame()
    assert set(f) == set(COLUMNS) and all(len(v) == 0 for v in f.values())
