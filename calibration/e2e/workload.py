"""Workloads of the end-to-end runs: request lengths sampled from the Azure conversation trace and
the measurement points (open-loop Poisson rates, closed-loop concurrencies).

numpy and the standard library only: this module runs on the measuring machine, where neither
the trace nor the simulator's dependencies are present. Lengths are tokens, times seconds.
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

LENGTHS_CSV = Path(__file__).with_name("lengths.csv")
PROMPT_CAP = 2048       # tokens; longer prompts are cut to this
OUTPUT_CAP = 256        # tokens; longer answers are cut to this
LENGTH_COLUMNS = ("row", "prompt_tokens", "output_tokens", "trace_prompt_tokens", "trace_output_tokens")
POINT_KINDS = ("poisson", "closed")


class WorkloadError(ValueError):
    """A bad workload setting or lengths file: one line naming the field, the value and what is allowed."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        super().__init__(f"{field}: got {value!r}; {allowed}")


def sample_trace_lengths(trace: Path, n: int, seed: int = 0, prompt_cap: int = PROMPT_CAP,
                         output_cap: int = OUTPUT_CAP) -> np.ndarray:
    """``n`` rows drawn without replacement from an Azure trace CSV (columns ContextTokens,
    GeneratedTokens), in random order, as an int array of [row, prompt, output, trace prompt,
    trace output]; prompt and output are the trace's lengths capped at the given maxima."""
    with open(trace, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"ContextTokens", "GeneratedTokens"} - set(reader.fieldnames or ())
        if missing:
            raise WorkloadError(str(trace), sorted(missing), "an Azure trace needs ContextTokens and GeneratedTokens")
        raw = np.array([(int(r["ContextTokens"]), int(r["GeneratedTokens"])) for r in reader], dtype=np.int64)
    if not 1 <= n <= len(raw):
        raise WorkloadError("n", n, f"must be between 1 and the trace's {len(raw)} rows")
    rows = np.random.default_rng(seed).choice(len(raw), size=n, replace=False)
    p, o = raw[rows, 0], raw[rows, 1]
    return np.stack([rows, np.minimum(p, prompt_cap), np.minimum(o, output_cap), p, o], axis=1)


def read_lengths(path: Path = LENGTHS_CSV) -> tuple[np.ndarray, np.ndarray]:
    """(prompt tokens, output tokens) of a lengths CSV, in file order."""
    with open(path, newline="", encoding="utf-8") as f:
        lines = [ln for ln in f if not ln.startswith("#")]
    reader = csv.DictReader(lines)
    if reader.fieldnames is None or not {"prompt_tokens", "output_tokens"} <= set(reader.fieldnames):
        raise WorkloadError(str(path), reader.fieldnames, "needs columns prompt_tokens and output_tokens")
    rows = [(int(r["prompt_tokens"]), int(r["output_tokens"])) for r in reader]
    arr = np.array(rows, dtype=np.int64).reshape(-1, 2)
    if (arr < 1).any():
        raise WorkloadError(str(path), int(arr.min()), "every length must be >= 1 token")
    return arr[:, 0], arr[:, 1]


@dataclass(frozen=True)
class Point:
    """One measured load point: ``requests`` consecutive rows of the lengths table from ``offset``,
    arriving as Poisson(``rate`` req/s, ``seed``) or from ``concurrency`` closed-loop clients."""

    name: str
    kind: str
    requests: int
    offset: int
    rate: float = 0.0
    concurrency: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in POINT_KINDS:
            raise WorkloadError(f"{self.name}.kind", self.kind, f"allowed: {', '.join(POINT_KINDS)}")
        if self.requests < 1 or self.offset < 0:
            raise WorkloadError(f"{self.name}.requests", (self.requests, self.offset), "requests >= 1, offset >= 0")
        if self.kind == "poisson" and not self.rate > 0:
            raise WorkloadError(f"{self.name}.rate", self.rate, "a Poisson point needs rate > 0 (req/s)")
        if self.kind == "closed" and self.concurrency < 1:
            raise WorkloadError(f"{self.name}.concurrency", self.concurrency, "a closed-loop point needs >= 1 client")

    def as_row(self) -> dict[str, object]:
        return asdict(self)


def poisson_arrivals(rate: float, n: int, seed: int) -> np.ndarray:
    """``n`` Poisson arrival times (seconds) at ``rate`` req/s; the first request arrives at 0."""
    if not rate > 0 or n < 1:
        raise WorkloadError("rate, n", (rate, n), "rate > 0 and n >= 1")
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=n)
    gaps[0] = 0.0
    return np.cumsum(gaps)


def plan_points(rates: list[float], concurrencies: list[int], requests_open: int, requests_closed: int,
                available: int, seed: int = 1) -> list[Point]:
    """Points in run order: Poisson rates (ascending), then closed-loop concurrencies. Each point
    takes its own consecutive block of rows, so no two points share requests; the repeats of a point
    replay the same requests and arrival times."""
    points: list[Point] = []
    offset = 0
    for i, rate in enumerate(sorted(rates)):
        points.append(Point(f"poisson-{rate:g}", "poisson", requests_open, offset, rate=rate, seed=seed + i))
        offset += requests_open
    for c in concurrencies:
        points.append(Point(f"closed-{c}", "closed", requests_closed, offset, concurrency=c))
        offset += requests_closed
    if offset > available:
        raise WorkloadError("requests", offset, f"the points need more rows than the lengths table's {available}")
    return points


def point_lengths(point: Point, prompt: np.ndarray, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The point's (prompt, output) token counts."""
    sl = slice(point.offset, point.offset + point.requests)
    return prompt[sl], output[sl]


def prompt_ids(n_tokens: int, vocab: int, seed: int) -> list[int]:
    """Random token ids for one prompt (distinct prompts share no prefix), avoiding the lowest 1000
    ids where special tokens live."""
    lo = min(1000, max(1, vocab // 4))
    return np.random.default_rng(seed).integers(lo, vocab, size=n_tokens).tolist()
