"""Latency metrics of measured requests and the predicted-vs-measured comparison maths.

Definitions (the same as servesim's per-request table): TTFT = first token - arrival, TPOT =
(last token - first token) / (output tokens - 1), E2E = last token - arrival, ITL = every gap
between consecutive tokens of a request; throughput = completed requests (and their output
tokens) over the time from the first arrival to the last completion. Times in seconds.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

PCTS = (50, 90, 99)
METRICS = ("ttft_s", "tpot_s", "itl_s", "e2e_s")
TARGETS = {50: 0.15, 99: 0.25}        # relative error allowed below saturation (p90: reported only)
THROUGHPUT_TARGET = 0.15
REQUIRED = ("point", "rep", "i", "prompt_tokens", "output_tokens", "generated_tokens", "arrival_s",
            "first_token_s", "last_token_s", "error", "token_offsets_ms")


class MeasuredDataError(ValueError):
    """A measured CSV that lacks columns or holds impossible times."""


def read_requests(path: Path) -> pd.DataFrame:
    """The harness's requests.csv with the derived metric columns (see the module docstring)."""
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise MeasuredDataError(f"{path}: missing columns {', '.join(missing)}")
    df["error"] = df["error"].astype(object).fillna("").astype(str)
    df["token_offsets_ms"] = df["token_offsets_ms"].astype(object).fillna("").astype(str)
    return add_metrics(df)


def add_metrics(df: pd.DataFrame) -> pd.DataFrame:
    """Add ttft_s, tpot_s, e2e_s and ok (finished without error, every token there) to a request frame."""
    out = df.copy()
    out["ok"] = (out["error"] == "") & (out["generated_tokens"] == out["output_tokens"])
    out["ttft_s"] = out["first_token_s"] - out["arrival_s"]
    gen = out["generated_tokens"].astype(float)
    out["tpot_s"] = np.where(gen > 1, (out["last_token_s"] - out["first_token_s"]) / np.maximum(gen - 1, 1), np.nan)
    out["e2e_s"] = out["last_token_s"] - out["arrival_s"]
    bad = out["ok"] & ((out["ttft_s"] < 0) | (out["e2e_s"] < out["ttft_s"]))
    if bad.any():
        r = out[bad].iloc[0]
        raise MeasuredDataError(f"request {r.get('request_id', r['i'])}: times out of order "
                                f"(arrival {r['arrival_s']}, first {r['first_token_s']}, last {r['last_token_s']})")
    return out


def itl_values(df: pd.DataFrame) -> np.ndarray:
    """Every inter-token gap (seconds) of the ok requests, from the token offsets after the first token."""
    gaps = []
    for text in df.loc[df["ok"], "token_offsets_ms"]:
        if not text:
            continue
        t = np.concatenate([[0.0], np.array(text.split(), dtype=float)]) * 1e-3
        gaps.append(np.diff(t))
    return np.concatenate(gaps) if gaps else np.empty(0)


def percentiles(x: np.ndarray) -> dict[str, float]:
    """p50, p90, p99 of the finite values (NaN when there are none)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        return {f"p{p}": math.nan for p in PCTS}
    return {f"p{p}": float(v) for p, v in zip(PCTS, np.percentile(x, PCTS))}


def throughput(arrival: np.ndarray, finish: np.ndarray, output: np.ndarray) -> tuple[float, float]:
    """(requests/s, output tokens/s) of the completed requests over first arrival to last completion."""
    arrival, finish, output = (np.asarray(a, dtype=float) for a in (arrival, finish, output))
    done = np.isfinite(finish)
    if not done.any():
        return math.nan, math.nan
    span = float(np.nanmax(finish[done]) - np.nanmin(arrival))
    if span <= 0:
        return math.nan, math.nan
    return float(done.sum()) / span, float(output[done].sum()) / span


def summary(df: pd.DataFrame, itl: np.ndarray | None = None) -> dict[str, float]:
    """Flat dict: '<metric>.p50' ... for TTFT, TPOT, ITL, E2E, plus throughput and counts."""
    ok = df[df["ok"]]
    out: dict[str, float] = {"completed": float(len(ok)), "failed": float(len(df) - len(ok))}
    gaps = itl_values(df) if itl is None else itl
    for m in METRICS:
        vals = gaps if m == "itl_s" else ok[m].to_numpy()
        for k, v in percentiles(vals).items():
            out[f"{m}.{k}"] = v
    finish = np.where(df["ok"], df["last_token_s"], np.nan)
    out["throughput_rps"], out["throughput_tok_s"] = throughput(df["arrival_s"].to_numpy(), finish,
                                                                df["output_tokens"].to_numpy())
    return out


def rel_error(predicted: float, measured: float) -> float:
    """(predicted - measured) / measured; NaN when either is missing or measured is 0."""
    if not (np.isfinite(predicted) and np.isfinite(measured)) or measured == 0:
        return math.nan
    return (predicted - measured) / measured


def target_for(key: str) -> float | None:
    """Allowed relative error of a summary key below saturation, or None if it has no target."""
    if key.startswith("throughput"):
        return THROUGHPUT_TARGET
    for p, t in TARGETS.items():
        if key.endswith(f".p{p}"):
            return t
    return None


def compare(measured: list[dict[str, float]], predicted: dict[str, float]) -> list[dict[str, object]]:
    """One row per summary key: measured mean over repeats, their spread ((max - min) / mean),
    predicted, relative error, target, whether it is met, whether the prediction lies between the
    lowest and the highest repeat (``in_range``; None with fewer than two repeats) and each repeat's
    value (``per_repeat``, space-separated, in repeat order)."""
    rows = []
    for key in predicted:
        if key in ("completed", "failed"):
            continue
        vals = np.array([m.get(key, math.nan) for m in measured], dtype=float)
        vals = vals[np.isfinite(vals)]
        mean = float(vals.mean()) if len(vals) else math.nan
        spread = float((vals.max() - vals.min()) / mean) if len(vals) > 1 and mean else math.nan
        p = predicted[key]
        err = rel_error(p, mean)
        tgt = target_for(key)
        rows.append({"metric": key, "measured": mean, "repeats": len(vals), "spread": spread,
                     "predicted": p, "error": err, "target": tgt,
                     "met": None if tgt is None or not np.isfinite(err) else bool(abs(err) <= tgt),
                     "in_range": bool(vals.min() <= p <= vals.max()) if len(vals) > 1 else None,
                     "per_repeat": " ".join(f"{v:.6g}" for v in vals)})
    return rows


def request_errors(measured: pd.DataFrame, predicted: pd.DataFrame, metric: str = "e2e_s") -> np.ndarray:
    """Per-request relative error of ``metric``, matching requests by their index ``i``."""
    m = measured[measured["ok"]].set_index("i")[metric]
    p = predicted.set_index("i")[metric]
    both = m.index.intersection(p.index)
    return ((p.loc[both] - m.loc[both]) / m.loc[both]).to_numpy(dtype=float)
