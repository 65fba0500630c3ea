"""Per-request files: statistics recomputed from every request, checked by hand and against the
tools' own aggregates stored in the same files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulator.errors import InputError
from simulator.metrics.measured import read_measured
from simulator.metrics.measured_requests import from_aiperf_records, from_arrays

FIX = Path(__file__).parents[1] / "commands" / "fixtures"


def test_arrays_by_hand():
    """Three requests: e2e = TTFT + gaps, TPOT = gaps / (output - 1), a one-token output has no TPOT."""
    s = from_arrays({"ttfts": [0.1, 0.2, 0.3], "itls": [[0.01, 0.03], [0.02], []], "input_lens": [10, 20, 30],
                     "output_lens": [3, 2, 1], "errors": ["", "", ""]})
    assert s.e2e == pytest.approx([0.14, 0.22, 0.3])
    assert s.tpot[:2] == pytest.approx([0.02, 0.02]) and np.isnan(s.tpot[2])
    m = s.metrics()
    assert m[("ttft_s", "median")] == pytest.approx(0.2)
    assert m[("ttft_s", "p90")] == pytest.approx(0.28)          # linear interpolation, as np.percentile
    assert m[("itl_s", "mean")] == pytest.approx(0.02)
    assert m[("tpot_s", "p99")] == pytest.approx(0.02)
    assert m[("e2e_s", "mean")] == pytest.approx((0.14 + 0.22 + 0.3) / 3)


def test_failed_requests_are_left_out():
    s = from_arrays({"ttfts": [0.1, 0.0], "itls": [[0.01], []], "input_lens": [10, 20], "output_lens": [2, 0],
                     "errors": ["", "Bad Request"]})
    assert list(s.prompt) == [10]


def test_no_itls_means_no_samples():
    assert from_arrays({"ttfts": [0.1], "input_lens": [1], "output_lens": [1]}) is None


def test_arrays_of_the_wrong_length_are_one_line_errors():
    with pytest.raises(InputError, match="itls"):
        from_arrays({"ttfts": [0.1, 0.2], "itls": [[0.01]], "input_lens": [1, 2], "output_lens": [2, 2]})


@pytest.mark.parametrize("name,word", [("vllm_bench_serve_detailed.json", "e2el"),
                                       ("sglang_bench_serving_details.jsonl", "e2e_latency")])
def test_recomputed_statistics_match_the_tools_own(name, word):
    """The file's mean/median/p99 were computed by the tool from the same requests; the recomputation
    (e2e from TTFT plus gaps) must give them back to the file's rounding."""
    m = read_measured(str(FIX / name))
    raw = json.loads((FIX / name).read_text().splitlines()[-1])
    assert m.samples is not None and m.requests == raw["completed"]
    for block, w in (("ttft_s", "ttft"), ("tpot_s", "tpot"), ("itl_s", "itl"), ("e2e_s", word)):
        for stat in ("mean", "median", "p99"):
            assert m.metrics[(block, stat)] * 1e3 == pytest.approx(raw[f"{stat}_{w}_ms"], abs=1e-3), (block, stat)
    assert m.metrics[("throughput_requests_per_s", None)] == raw["request_throughput"]


def test_aiperf_jsonl_keeps_profiling_successes_with_their_start_times():
    path = FIX / "aiperf_run" / "profile_export.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    ok = [r for r in lines if r["error"] is None and r["metadata"]["benchmark_phase"] == "profiling"]
    m = read_measured(str(path))
    s = m.samples
    assert (m.tool, m.requests, m.model) == ("aiperf", len(ok), None)
    t0 = ok[0]["metadata"]["request_start_ns"]
    assert s.start == pytest.approx([(r["metadata"]["request_start_ns"] - t0) * 1e-9 for r in ok])
    assert s.ttft == pytest.approx([r["metrics"]["time_to_first_token"]["value"] / 1e3 for r in ok])
    assert m.metrics[("tpot_s", "median")] * 1e3 == pytest.approx(
        np.median([r["metrics"]["inter_token_latency"]["value"] for r in ok]))
    span = max((r["metadata"]["request_end_ns"] - t0) * 1e-9 for r in ok)
    assert m.metrics[("throughput_requests_per_s", None)] == pytest.approx(len(ok) / span, rel=1e-4)


def test_aiperf_record_without_start_time_is_one_line_error():
    rec = {"metadata": {}, "metrics": {t: {"value": 1, "unit": "ms"} for t in (
        "time_to_first_token", "request_latency", "input_sequence_length", "output_sequence_length")}, "error": None}
    with pytest.raises(InputError, match="request_start_ns"):
        from_aiperf_records([(1, rec)])
