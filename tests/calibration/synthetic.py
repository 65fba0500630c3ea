"""Rows and device metadata of synthetic attention-calibration logs (the tile-fit tests)."""
from __future__ import annotations

import json
from pathlib import Path


def timed_row(seconds: float, **shape: object) -> dict:
    """One bf16, head-dim-128 log row for ``shape`` whose kernel took ``seconds`` (events 20% longer)."""
    return {"dtype": "bf16", "head_dim": 128, **shape, "event_s": seconds * 1.2, "kernel_s": seconds, "repeats": 10}


def write_meta(out: Path, sms: int = 132) -> None:
    """The run's meta.json for a synthetic device with ``sms`` multiprocessors."""
    (out / "meta.json").write_text(json.dumps({"device": {"name": "synthetic", "multiprocessors": sms}}))
