"""The per-request columns of a run, one at a time: the summary reads the few it needs from the request
state without building the whole per-request table, and :func:`~.summary.per_request` builds the table
from the same functions (so both see the same numbers)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from ..engine.state import DONE, REJECT_REASONS, REJECTED, SERVED_BY

if TYPE_CHECKING:
    from ..engine.simulate import SimulationResult


class Columns(Protocol):
    """Per-request columns by name (those of :data:`COLUMNS`), as numpy arrays, and their length."""

    n: int

    def __getitem__(self, name: str) -> np.ndarray: ...


def _tpot(res: "SimulationResult") -> np.ndarray:
    r = res.requests
    return np.where(r.output > 1, (r.finish - r.first_token) / np.maximum(r.output - 1, 1), np.nan)


def _meets_slo(res: "SimulationResult") -> np.ndarray:
    r, slo = res.requests, res.scenario.slo
    ok = r.status == DONE
    if slo.ttft_s is not None:
        ok &= (r.first_token - r.arrival) <= slo.ttft_s
    if slo.tpot_s is not None:
        ok &= np.where(r.output > 1, _tpot(res) <= slo.tpot_s, True)
    if slo.e2e_s is not None:
        ok &= (r.finish - r.arrival) <= slo.e2e_s
    return ok


def _itl(res: "SimulationResult", k: int) -> np.ndarray:
    return np.where(res.requests.status == DONE, res.request_itl()[k], np.nan)


def _warmup(res: "SimulationResult") -> np.ndarray:
    r = res.requests
    warm = np.zeros(r.n, dtype=bool)
    warm[np.argsort(r.arrival, kind="stable")[:res.scenario.workload.warmup(r.n)]] = True
    return warm


#: Every column of the per-request table, in its order, and how it is made from a run.
COLUMNS: dict[str, Callable[["SimulationResult"], np.ndarray]] = {
    "request": lambda res: np.arange(res.requests.n),
    "replica": lambda res: res.requests.replica,
    "arrival_s": lambda res: res.requests.arrival,
    "queue_s": lambda res: res.requests.first_sched - res.requests.arrival,
    "ttft_s": lambda res: res.requests.first_token - res.requests.arrival,
    "tpot_s": _tpot,
    "e2e_s": lambda res: res.requests.finish - res.requests.arrival,
    "max_itl_s": lambda res: np.where((res.requests.output > 1) & (res.requests.status == DONE),
                                      res.requests.max_itl, np.nan),
    "itl_p50_s": lambda res: _itl(res, 0),
    "itl_p99_s": lambda res: _itl(res, 1),
    "prompt_tokens": lambda res: res.requests.prompt,
    "output_tokens": lambda res: res.requests.output,
    "generated_tokens": lambda res: res.requests.generated,
    "prefill_tokens_computed": lambda res: res.requests.prefill_computed,
    "preemptions": lambda res: res.requests.preemptions,
    "cached_prompt_tokens": lambda res: res.requests.first_cached,
    "kv_transfer_s": lambda res: res.requests.kv_transfer_s,
    "served_by": lambda res: np.asarray(SERVED_BY, dtype=object)[res.requests.served_by],
    "finished": lambda res: res.requests.status == DONE,
    "rejected": lambda res: res.requests.status == REJECTED,
    "reject_reason": lambda res: np.asarray(REJECT_REASONS, dtype=object)[res.requests.reject_reason],
    "meets_slo": _meets_slo,
    "warmup": _warmup,
}


class RunColumns:
    """The columns of a run, each made when asked for (nothing is kept: a column costs one pass)."""

    def __init__(self, res: "SimulationResult") -> None:
        self.res = res
        self.n = res.requests.n

    def __getitem__(self, name: str) -> np.ndarray:
        return COLUMNS[name](self.res)


class TableColumns:
    """The columns of a per-request table the caller already has."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self.n = len(df)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.df[name].to_numpy()


class KeptColumns:
    """Columns cut to the rows ``keep`` (the requests after the warm-up)."""

    def __init__(self, cols: Columns, keep: np.ndarray) -> None:
        self.cols, self.keep = cols, keep
        self.n = int(keep.sum())

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name][self.keep]


def table(res: "SimulationResult") -> pd.DataFrame:
    """The per-request table: every column of :data:`COLUMNS`."""
    return pd.DataFrame({name: make(res) for name, make in COLUMNS.items()})
