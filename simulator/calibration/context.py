"""The state one calibration run passes to each kernel kind: output folder, timer, budgets, log."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .io import CsvLog, open_log
from .timing import Bench

#: Seconds of measuring allowed per kind on a GPU (the whole suite stays near 4-5 minutes).
GPU_BUDGET_S: dict[str, float] = {
    "launch": 5, "memory": 15, "gemm": 150, "attention_prefill": 30, "attention_decode": 30,
    "whole_model": 130, "collectives": 60,
}
#: Seconds allowed per kind in CPU quick mode (the whole run stays under about a minute).
CPU_BUDGET_S: dict[str, float] = {k: 8.0 for k in GPU_BUDGET_S}


@dataclass
class RunContext:
    """What a kind needs to measure and record."""

    out: Path
    device: str                       # 'cuda' or 'cpu'
    quick: bool
    bench: Bench
    sampler: Any = None               # meta.PowerSampler on GPUs
    budgets: dict[str, float] = field(default_factory=dict)
    deadline: float = float("inf")    # time.monotonic() after which no new point starts
    stream: TextIO = sys.stdout
    notes: dict[str, Any] = field(default_factory=dict)   # per-kind facts for meta.json
    _logs: dict[str, CsvLog] = field(default_factory=dict)
    _kind_end: float = float("inf")

    def log(self, msg: str) -> None:
        print(f"[calibrate {time.strftime('%H:%M:%S')}] {msg}", file=self.stream, flush=True)

    def csv(self, name: str) -> CsvLog:
        if name not in self._logs:
            self._logs[name] = open_log(self.out, name)
        return self._logs[name]

    def begin(self, kind: str) -> None:
        """Start a kind's time budget and tell the sampler which phase is running."""
        self._kind_end = min(self.deadline, time.monotonic() + self.budgets.get(kind, 30.0))
        if self.sampler is not None:
            self.sampler.phase = kind

    def time_left(self) -> float:
        """Seconds left in the current kind's budget."""
        return self._kind_end - time.monotonic()

    def out_of_time(self) -> bool:
        return time.monotonic() >= self._kind_end

    def clocks(self) -> dict[str, float | None]:
        """SM clock and power at this moment (empty on CPU)."""
        if self.sampler is None:
            return {"sm_clock_mhz": None, "power_w": None}
        return self.sampler.clock_row()
