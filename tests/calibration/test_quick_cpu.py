"""The whole suite in CPU quick mode (needs torch): schemas, counts, resume after interruption."""
from __future__ import annotations

import json
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from simulator.calibration import suite  # noqa: E402
from simulator.calibration.io import SCHEMAS, as_float, read_rows  # noqa: E402

KERNEL_CSVS = ("gemm", "attention_prefill", "attention_decode", "memory", "launch", "whole_model")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cpu-quick")
    t0 = time.perf_counter()
    code = suite.main(["--out", str(out), "--device", "cpu", "--quick"])
    return out, code, time.perf_counter() - t0


def test_runs_fast_and_writes_every_schema(quick_run):
    out, code, seconds = quick_run
    assert code == 0
    assert seconds < 60
    for name in KERNEL_CSVS:
        header = (out / f"{name}.csv").read_text().splitlines()[0].split(",")
        assert tuple(header) == SCHEMAS[name].columns
        assert read_rows(out / f"{name}.csv"), name
    meta = json.loads((out / "meta.json").read_text())
    assert meta["gpu"] == "cpu" and meta["versions"]["torch"] == torch.__version__
    assert all(v["status"] in ("ok", "skipped: GPU only") for v in meta["kinds"].values())


def test_times_are_ordered_and_positive(quick_run):
    out, _, _ = quick_run
    for name in ("gemm", "attention_prefill", "attention_decode", "memory"):
        for r in read_rows(out / f"{name}.csv"):
            p10, med, p90 = (as_float(r[c]) for c in ("event_p10_s", "event_s", "event_p90_s"))
            assert 0 < p10 <= med <= p90, (name, r)
            assert int(r["repeats"]) >= 3


def test_counts_match_hand_formulas(quick_run):
    out, _, _ = quick_run
    for r in read_rows(out / "gemm.csv"):
        m, k, n = (int(r[c]) for c in ("m", "k", "n"))
        assert float(r["flops"]) == 2 * m * k * n
        assert float(r["bytes"]) == 2 * (m * k + k * n + m * n)
    for r in read_rows(out / "attention_prefill.csv"):
        c, p = int(r["new_tokens"]), int(r["prefix"])
        pairs = sum(p + i + 1 for i in range(c))          # query i sees p + i + 1 keys
        assert int(r["causal_pairs"]) == pairs
        assert int(r["kv_len"]) == p + c
    for r in read_rows(out / "whole_model.csv"):
        assert int(r["tokens"]) == int(r["batch"]) * int(r["seq"])
        assert r["cache_fill"] == ("random" if r["phase"] == "decode" else "none")


def test_resume_refills_only_missing_rows(quick_run, tmp_path):
    out, _, _ = quick_run
    path = out / "gemm.csv"
    lines = path.read_text().splitlines(keepends=True)
    # simulate a run killed while writing the last row
    path.write_text("".join(lines[:-1]) + lines[-1][:10])
    assert suite.main(["--out", str(out), "--device", "cpu", "--quick", "--only", "gemm"]) == 0
    after = path.read_text().splitlines()
    assert len(after) == len(lines)
    keys = [tuple(line.split(",")[:5]) for line in after[1:]]
    assert len(keys) == len(set(keys))
    # a complete folder: a second run adds nothing
    assert suite.main(["--out", str(out), "--device", "cpu", "--quick", "--only", "memory,launch"]) == 0
    assert len(read_rows(out / "memory.csv")) == 6
