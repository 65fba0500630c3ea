"""End-to-end validation kit (calibration/e2e): workload construction, the measured CSV schema, the
comparison maths on synthetic data with hand-computed answers, the profile fit on synthetic steps
with known parameters, the committed engine profiles against what the fit derives from the committed
per-step profiles, and the replay of the committed H200 and H100 measurements."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from calibration.e2e import harness
from calibration.e2e.compare import deployment, gpu_for, predict_open, step_comparison, write_trace
from calibration.e2e.engine import describe, result_row
from calibration.e2e.metrics import (MeasuredDataError, add_metrics, compare, itl_values, read_requests, summary,
                                     throughput)
from calibration.e2e.profile_fit import attention_efficiencies, elementwise_median, fit, model_terms
from calibration.e2e.stepprofile import kernel_kind, split_steps
from calibration.e2e.workload import (LENGTHS_CSV, OUTPUT_CAP, PROMPT_CAP, Point, WorkloadError, plan_points,
                                      point_lengths, poisson_arrivals, prompt_ids, read_lengths, sample_trace_lengths)

REPO = Path(__file__).resolve().parents[2]
TRACE = REPO.parent / "shared" / "traces" / "AzureLLMInferenceTrace_conv.csv"
DATA = REPO / "calibration" / "data" / "e2e-h100"
H200 = REPO / "calibration" / "data" / "e2e-h200"
H200_LARGE = REPO / "calibration" / "data" / "e2e-h200-large"
#: Every H200 per-step profile: hf-paged pools them all (five machines, the last two with two passes each).
H200_PROFILES = (H200, H200_LARGE, H200_LARGE / "profile-rep2",
                 *(REPO / "calibration" / "data" / "e2e-h200-dense" / f"m{m}-{p}" for m in (1, 2) for p in ("up", "down")))
needs_trace = pytest.mark.skipif(not TRACE.exists(), reason=f"Azure trace not present at {TRACE}")


# ---------------------------------------------------------------- workload


def test_committed_lengths_are_capped_and_sized() -> None:
    p, o = read_lengths(LENGTHS_CSV)
    assert len(p) == len(o) == 1000
    assert p.min() >= 1 and p.max() == PROMPT_CAP and o.max() == OUTPUT_CAP
    assert 800 < p.mean() < 1100 and 120 < o.mean() < 180      # capped conversation-trace means


@needs_trace
def test_committed_lengths_are_the_trace_rows_they_name() -> None:
    trace = pd.read_csv(TRACE)
    rows = pd.read_csv(LENGTHS_CSV, comment="#")
    assert rows["row"].is_unique
    src = trace.iloc[rows["row"].to_numpy()]
    assert (src["ContextTokens"].to_numpy() == rows["trace_prompt_tokens"]).all()
    assert (src["GeneratedTokens"].to_numpy() == rows["trace_output_tokens"]).all()
    assert (np.minimum(rows["trace_prompt_tokens"], PROMPT_CAP) == rows["prompt_tokens"]).all()
    again = sample_trace_lengths(TRACE, 1000, seed=0)        # the documented draw reproduces the file
    assert (again[:, 0] == rows["row"].to_numpy()).all()


def test_sample_trace_lengths_caps_and_rejects_bad_sizes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(
        f"2023-11-16 18:15:{i:02d}.0,{100 * (i + 1)},{50 * (i + 1)}\n" for i in range(10)))
    t = sample_trace_lengths(path, 10, seed=3, prompt_cap=500, output_cap=200)
    assert sorted(t[:, 0].tolist()) == list(range(10))
    assert (t[:, 1] == np.minimum(t[:, 3], 500)).all() and (t[:, 2] == np.minimum(t[:, 4], 200)).all()
    with pytest.raises(WorkloadError, match="between 1 and"):
        sample_trace_lengths(path, 11)


def test_points_take_disjoint_rows_and_poisson_arrivals_have_the_rate() -> None:
    pts = plan_points([2.0, 0.5], [4], requests_open=30, requests_closed=20, available=100)
    assert [p.name for p in pts] == ["poisson-0.5", "poisson-2", "closed-4"]
    assert [p.offset for p in pts] == [0, 30, 60]
    p, o = read_lengths(LENGTHS_CSV)
    assert len(point_lengths(pts[2], p, o)[0]) == 20
    with pytest.raises(WorkloadError, match="more rows"):
        plan_points([1.0], [], 80, 10, available=50)
    a = poisson_arrivals(4.0, 40_000, seed=7)
    assert a[0] == 0 and np.all(np.diff(a) >= 0)
    assert abs(np.diff(a).mean() - 0.25) < 0.01                       # mean gap 1/rate
    assert np.array_equal(a, poisson_arrivals(4.0, 40_000, seed=7))
    with pytest.raises(WorkloadError):
        Point("x", "poisson", 10, 0, rate=0.0)
    with pytest.raises(WorkloadError):
        Point("x", "burst", 10, 0)


def test_prompt_ids_are_deterministic_in_range_and_distinct() -> None:
    a, b = prompt_ids(500, 128256, 1), prompt_ids(500, 128256, 2)
    assert a == prompt_ids(500, 128256, 1) and a != b
    assert min(a) >= 1000 and max(a) < 128256 and len(a) == 500


# ---------------------------------------------------------------- engine records


def test_describe_splits_decodes_from_prompt_chunks() -> None:
    def fs(past: int, q: int, generated: int) -> SimpleNamespace:
        return SimpleNamespace(state=SimpleNamespace(position_offset=past, generated_tokens=[7] * generated),
                               query_length=q)
    d = describe([fs(100, 1, 3), fs(50, 1, 1), fs(0, 512, 0), fs(512, 200, 0)], t=1.0)
    assert (d["decode_seqs"], d["decode_ctx"]) == (2, 101 + 51)
    assert (d["prefill_seqs"], d["prefill_tokens"], d["prefill_kv"]) == (2, 712, 512 + 712)
    assert d["prefill_pairs"] == 512 * 513 / 2 + 200 * 512 + 200 * 201 / 2     # c*p + c(c+1)/2 per chunk


def test_result_row_times_are_relative_and_offsets_in_ms() -> None:
    res = SimpleNamespace(timestamps=[10.5, 10.6, 10.75], generated_tokens=[1, 2, 3], created_time=10.0,
                          lifespan=(10.1, 10.76), error=None)
    r = result_row(res, t0=10.0, received=0.8)
    assert r["first_token_s"] == pytest.approx(0.5) and r["last_token_s"] == pytest.approx(0.75)
    assert r["token_offsets_ms"] == "100.00 250.00" and r["generated_tokens"] == 3 and r["error"] == ""


def test_split_steps_cuts_at_markers_and_classifies_kernels() -> None:
    ks = [(0.0, 1e-6, "early_kernel"), (1.0, 1e-7, "spin_kernel(long)"), (2.0, 4e-6, "nvjet_sm90_tst_64x8"),
          (3.0, 2e-6, "cudnn_generated_fort_native_sdpa_sm90_flash_fprop"), (4.0, 1e-7, "spin_kernel(long)"),
          (5.0, 3e-6, "void at::native::index_elementwise_kernel<128, 4>"),
          (6.0, 5e-6, "void at::native::elementwise_kernel<direct_copy_kernel_cuda>")]
    steps = split_steps(ks)
    assert [s["kernels"] for s in steps] == [2, 2]
    assert steps[0]["kernel_s"] == pytest.approx(6e-6) and steps[0]["gemm_s"] == pytest.approx(4e-6)
    assert steps[0]["attention_s"] == pytest.approx(2e-6)
    assert steps[1]["gather_s"] == pytest.approx(3e-6) and steps[1]["copy_s"] == pytest.approx(5e-6)
    assert kernel_kind("void at::native::vectorized_elementwise_kernel<silu>") == "other"
    # the memory-efficient SDPA kernel names cutlass but is attention
    assert kernel_kind("fmha_cutlassF_bf16_aligned_64x128_rf_sm80(PyTorchMemEffAttention::AttentionKernel)") == "attention"
    assert kernel_kind("void cublasLt::splitKreduce_kernel<32, 16>") == "gemm"


# ---------------------------------------------------------------- CSV schema and metrics


def _synthetic_requests(path: Path) -> Path:
    """Three requests of one point: two complete, one cancelled. Hand-computed metrics in the tests."""
    rows = [
        dict(point="p", kind="poisson", rep=0, i=0, request_id="p-r0-0", prompt_tokens=100, output_tokens=3,
             generated_tokens=3, scheduled_s=0.0, arrival_s=0.0, created_s=0.0, admitted_s=0.01, first_token_s=0.2,
             last_token_s=0.6, finished_s=0.6, received_s=0.61, error="", token_offsets_ms="100 400"),
        dict(point="p", kind="poisson", rep=0, i=1, request_id="p-r0-1", prompt_tokens=50, output_tokens=2,
             generated_tokens=2, scheduled_s=1.0, arrival_s=1.0, created_s=1.0, admitted_s=1.0, first_token_s=1.5,
             last_token_s=1.8, finished_s=1.8, received_s=1.81, error="", token_offsets_ms="300"),
        dict(point="p", kind="poisson", rep=0, i=2, request_id="p-r0-2", prompt_tokens=70, output_tokens=9,
             scheduled_s=1.5, arrival_s=1.5, error="deadline"),
    ]
    h = harness.Csv(path, harness.REQUEST_FIELDS)
    h.write(rows)
    h.f.close()
    return path


def test_harness_csv_schema_round_trips_and_metrics_are_hand_computed(tmp_path: Path) -> None:
    path = _synthetic_requests(tmp_path / "requests.csv")
    with open(path, newline="") as f:
        assert tuple(next(csv.reader(f))) == harness.REQUEST_FIELDS
    df = read_requests(path)
    assert df["ok"].tolist() == [True, True, False]
    assert df.loc[0, "ttft_s"] == pytest.approx(0.2) and df.loc[0, "tpot_s"] == pytest.approx(0.2)
    assert df.loc[1, "e2e_s"] == pytest.approx(0.8) and df.loc[1, "tpot_s"] == pytest.approx(0.3)
    assert np.allclose(np.sort(itl_values(df)), [0.1, 0.3, 0.3])
    s = summary(df)
    assert s["completed"] == 2 and s["failed"] == 1
    assert s["ttft_s.p50"] == pytest.approx(0.35) and s["e2e_s.p50"] == pytest.approx(0.7)
    # 2 completed requests (5 output tokens) from the first arrival (0.0) to the last completion (1.8)
    assert s["throughput_rps"] == pytest.approx(2 / 1.8) and s["throughput_tok_s"] == pytest.approx(5 / 1.8)


def test_bad_measured_data_is_refused(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("point,rep\np,0\n")
    with pytest.raises(MeasuredDataError, match="missing columns"):
        read_requests(tmp_path / "r.csv")
    df = pd.read_csv(_synthetic_requests(tmp_path / "ok.csv"), keep_default_na=False, na_values=[""])
    df["error"] = df["error"].fillna("")
    df.loc[0, "first_token_s"] = -1.0
    with pytest.raises(MeasuredDataError, match="out of order"):
        add_metrics(df)


def test_throughput_and_comparison_maths() -> None:
    assert throughput(np.array([0.0, 1.0]), np.array([2.0, np.nan]), np.array([10, 10])) == (0.5, 5.0)
    assert all(math.isnan(v) for v in throughput(np.array([0.0]), np.array([np.nan]), np.array([3])))
    measured = [{"ttft_s.p50": 1.0, "e2e_s.p99": 10.0, "throughput_rps": 2.0},
                {"ttft_s.p50": 1.2, "e2e_s.p99": 10.0, "throughput_rps": 2.0}]
    rows = {r["metric"]: r for r in compare(measured, {"ttft_s.p50": 1.265, "e2e_s.p99": 7.4, "throughput_rps": 2.2})}
    t = rows["ttft_s.p50"]
    assert t["measured"] == pytest.approx(1.1) and t["spread"] == pytest.approx(0.2 / 1.1)
    assert t["error"] == pytest.approx(0.15) and t["target"] == 0.15 and t["met"] is True
    assert rows["e2e_s.p99"]["error"] == pytest.approx(-0.26) and rows["e2e_s.p99"]["met"] is False
    assert rows["throughput_rps"]["met"] is True and rows["throughput_rps"]["repeats"] == 2
    assert t["in_range"] is False and rows["e2e_s.p99"]["in_range"] is False
    inside = compare(measured, {"ttft_s.p50": 1.05, "e2e_s.p99": 10.0, "throughput_rps": 2.0})
    assert [r["in_range"] for r in inside] == [True, True, True]
    assert compare(measured[:1], {"ttft_s.p50": 1.0})[0]["in_range"] is None
    assert t["per_repeat"] == "1 1.2"


# ---------------------------------------------------------------- profile fit


def _profile(tmp_path: Path, per_kernel: float, per_step: float, per_seq: float, per_token: float) -> Path:
    """Synthetic profile_steps.csv: plain runs host-bound with known host costs, profiled runs whose
    copy kernels grow by ``per_token`` seconds per context token, on top of 5 ms of GEMMs."""
    rows = []
    for b in (1, 8, 32):
        ctx = 1048.0 * b
        host = 1500 * per_kernel
        for i in range(5):
            rows.append({"run": "plain", "batch": b, "step": i, "seqs": b, "prefill_seqs": 0, "decode_seqs": b,
                         "decode_ctx": ctx, "fwd_host_s": host, "wall_s": host + per_step + per_seq * b})
            rows.append({"run": "profiled", "batch": b, "step": i, "seqs": b, "prefill_seqs": 0, "decode_seqs": b,
                         "decode_ctx": ctx, "fwd_host_s": host / 2, "wall_s": host / 2, "kernels": 1500,
                         "kernel_s": 5e-3 + per_token * ctx, "gemm_s": 5e-3, "copy_s": per_token * ctx})
    path = tmp_path / "profile_steps.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    pd.DataFrame([{"batch": 1, "kind": "other", "name": "vectorized_elementwise_kernel<add>", "count": 300,
                   "total_s": 300 * 2e-6},
                  {"batch": 1, "kind": "copy", "name": "elementwise_kernel<copy>", "count": 100, "total_s": 100 * 5e-6},
                  {"batch": 1, "kind": "gemm", "name": "nvjet", "count": 500, "total_s": 500 * 1e-5}]
                 ).to_csv(tmp_path / "profile_kernels.csv", index=False)
    return path


def test_profile_fit_recovers_known_host_and_kernel_figures(tmp_path: Path) -> None:
    steps = _profile(tmp_path, per_kernel=40e-6, per_step=2e-3, per_seq=1e-4, per_token=5e-7)
    f = fit(steps, tmp_path / "profile_kernels.csv", model_kernels=1200, copy_bytes_per_token=655360.0)
    assert f["per_launched_kernel_s"] == pytest.approx(40e-6)
    assert f["cpu_launch_per_kernel_s"] == pytest.approx(40e-6 * 1500 / 1200)
    assert f["cpu_overhead_per_step_s"] == pytest.approx(2e-3) and f["cpu_overhead_per_seq_s"] == pytest.approx(1e-4)
    assert f["kv_copy_Bps"] == pytest.approx(655360.0 / 5e-7)
    assert f["elementwise_kernel_s"] == pytest.approx(2e-6)     # 300 of the 400 short kernels take 2 us
    assert elementwise_median([], 1) != elementwise_median([], 1)   # NaN when nothing matches
    assert math.isnan(f["packed_attention_efficiency"])          # no step model given: no attention figures


def test_profile_fit_pools_machines_batch_by_batch(tmp_path: Path) -> None:
    """Two machines with host costs 30 and 50 us per kernel: the pooled host figure is the median over
    all their batches, and the per-sequence slope comes from the host-bound batches of both."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    sa = _profile(a, per_kernel=30e-6, per_step=2e-3, per_seq=1e-4, per_token=5e-7)
    sb = _profile(b, per_kernel=50e-6, per_step=2e-3, per_seq=1e-4, per_token=5e-7)
    one = fit(sa, a / "profile_kernels.csv", model_kernels=1200, copy_bytes_per_token=655360.0)
    both = fit([sa, sb], [a / "profile_kernels.csv", b / "profile_kernels.csv"], model_kernels=1200,
               copy_bytes_per_token=655360.0)
    assert both["host_bound_batches"] == 2 * one["host_bound_batches"]
    assert both["per_launched_kernel_s"] == pytest.approx(40e-6)       # median of 30 and 50 us batches
    assert both["cpu_overhead_per_seq_s"] == pytest.approx(1e-4) and both["cpu_overhead_per_step_s"] == pytest.approx(2e-3)
    assert both["kv_copy_Bps"] == pytest.approx(655360.0 / 5e-7)


def test_profile_fit_attention_efficiencies_by_step_kind() -> None:
    """Decode steps: model 1 ms, measured 2 ms (filed under gemm, as the memory-efficient kernel was);
    chunk steps: model 3 ms, measured 4 ms (filed under attention). GEMMs 5 ms, predicted exactly."""
    rows = [{"run": "profiled", "kind": "d", "gemm_s": "0.007", "attention_s": ""},
            {"run": "profiled", "kind": "d", "gemm_s": "0.005", "attention_s": "0.002"},
            {"run": "profiled", "kind": "c", "gemm_s": "0.005", "attention_s": "0.004"},
            {"run": "plain", "kind": "c", "gemm_s": "", "attention_s": ""}]

    def predict(r: dict[str, str]) -> tuple[float, float, bool]:
        return (3e-3, 5e-3, True) if r["kind"] == "c" else (1e-3, 5e-3, False)

    dec, chunk = attention_efficiencies(rows, predict)
    assert dec == pytest.approx(0.5) and chunk == pytest.approx(0.75)


# ---------------------------------------------------------------- scenarios and the committed run


def test_trace_written_for_servesim_replays_the_arrivals(tmp_path: Path) -> None:
    from simulator.workload.traces import read_azure_trace

    arr = np.array([0.0, 0.4, 0.4000005, 2.25])
    t = read_azure_trace(write_trace(tmp_path / "t.csv", arr, [10, 20, 30, 40], [1, 2, 3, 4]))
    assert np.allclose(t.arrival_s, arr, atol=2e-6)
    assert t.prompt_tokens.tolist() == [10, 20, 30, 40] and t.output_tokens.tolist() == [1, 2, 3, 4]


def test_scenario_mirrors_the_engine_settings() -> None:
    dep = deployment({"block_size": 64, "num_blocks": 2048, "max_batch_tokens": 2048, "max_batch_size": 32},
                     "hf-paged", "h200-sxm")
    assert dep["engine"] == "hf-paged" and dep["gpu"] == "h200-sxm" and dep["batching"]["max_batch_size"] == 32
    assert dep["kv_cache"] == {"block_size": 64, "num_blocks": 2048, "preemption": "recompute"}


def test_gpu_comes_from_the_measured_device_name() -> None:
    from simulator.errors import InputError

    assert gpu_for({"device": {"name": "NVIDIA H200"}}) == "h200-sxm"
    assert gpu_for({"device": {"name": "NVIDIA H100 80GB HBM3"}}) == "h100-sxm"
    assert gpu_for({"device": {"name": "NVIDIA A100 80GB"}}) == "a100-sxm-80gb"     # catalog alias a100-80gb
    with pytest.raises(InputError, match="--gpu"):
        gpu_for({"device": {"name": "Imaginary X1"}})


@pytest.mark.skipif(not all((d / "profile_steps.csv").exists() for d in (*H200_PROFILES, DATA)),
                    reason="no committed per-step profiles")
@pytest.mark.parametrize("engine, folders", [("hf-paged", H200_PROFILES),
                                             ("hf-paged-cudnn", (DATA,))])
def test_committed_engine_profiles_are_what_the_fit_derives(engine: str, folders: tuple[Path, ...]) -> None:
    """The catalog's hf-paged figures come from the per-step profiles alone (five H200 machines, pooled):
    rerunning profile_fit on the committed data gives them back (within the YAML's rounding). Fails when
    the step model's inventory or its prefill-attention pricing changes without the profiles being
    derived again."""
    import json

    from simulator.catalog.engines import load_engine

    kernels, copy_bytes, att = model_terms(engine, gpu=gpu_for(json.loads((folders[0] / "meta.json").read_text())))
    f = fit([d / "profile_steps.csv" for d in folders], [d / "profile_kernels.csv" for d in folders], kernels,
            copy_bytes, att)
    e = load_engine(engine)
    for key in ("cpu_launch_per_kernel_s", "cpu_overhead_per_step_s", "kv_copy_Bps", "packed_attention_efficiency",
                "packed_attention_efficiency_decode", "elementwise_kernel_s"):
        assert getattr(e, key) == pytest.approx(f[key], rel=0.01), key
    assert e.cpu_overhead_per_seq_s == pytest.approx(f["cpu_overhead_per_seq_s"], rel=0.01, abs=1e-6)


@pytest.mark.skipif(not (H200 / "requests.csv").exists(), reason="no committed H200 run")
def test_committed_h200_run_has_two_repeats_of_every_point() -> None:
    import json

    meta = json.loads((H200 / "meta.json").read_text())
    assert meta["device"]["name"] == "NVIDIA H200" and meta["cudnn_sdpa"] is False
    assert [r["rep"] for r in meta["runs"]] == [0, 1] and all("--no-cudnn-sdpa" in r["command"] for r in meta["runs"])
    df = read_requests(H200 / "requests.csv")
    assert df["ok"].all() and (df["generated_tokens"] == df["output_tokens"]).all()
    counts = df.groupby(["point", "rep"]).size().unstack()
    assert (counts.columns.tolist() == [0, 1]) and counts.notna().all().all()
    assert counts.loc["poisson-0.4"].tolist() == [30, 30] and counts.loc["closed-16"].tolist() == [12, 12]
    # both repeats replay the same requests: the same lengths in the same order
    a, b = (df[(df["point"] == "poisson-0.8") & (df["rep"] == r)].sort_values("i") for r in (0, 1))
    assert (a["prompt_tokens"].to_numpy() == b["prompt_tokens"].to_numpy()).all()


HOLDOUT = REPO / "calibration" / "data" / "e2e-h200-holdout"


@pytest.mark.skipif(not all((d / "requests.csv").exists() for d in (HOLDOUT, H200_LARGE)), reason="no committed H200 runs")
def test_committed_holdout_replays_the_large_runs_poisson_points() -> None:
    """The held-out machine served the large folder's Poisson 0.8/s and 1.6/s requests: the same lengths in the
    same order and the same arrival offsets, all 500 completed with their forced lengths."""
    import json

    meta = json.loads((HOLDOUT / "meta.json").read_text())
    assert meta["device"]["name"] == "NVIDIA H200" and meta["cudnn_sdpa"] is False
    held, large = read_requests(HOLDOUT / "requests.csv"), read_requests(H200_LARGE / "requests.csv")
    assert held["ok"].all() and (held["generated_tokens"] == held["output_tokens"]).all()
    assert held.groupby("point").size().to_dict() == {"poisson-0.8": 250, "poisson-1.6": 250}
    for point in ("poisson-0.8", "poisson-1.6"):
        a = held[held["point"] == point].sort_values("i")
        b = large[(large["point"] == point) & (large["rep"] == 0)].sort_values("i")
        for col in ("prompt_tokens", "output_tokens"):
            assert (a[col].to_numpy() == b[col].to_numpy()).all()
        offsets = [x["arrival_s"].to_numpy() - x["arrival_s"].min() for x in (a, b)]
        assert np.allclose(*offsets, atol=0.05)   # the same schedule, as each run's clock kept it


needs_data = pytest.mark.skipif(not (DATA / "requests.csv").exists(), reason="no committed H100 run")


@needs_data
def test_committed_run_has_its_schema_settings_and_source() -> None:
    import json

    meta = json.loads((DATA / "meta.json").read_text())
    assert meta["started_utc"] and meta["versions"]["transformers"] and "H100" in meta["device"]["name"]
    assert meta["engine"]["attn_implementation"] == "paged|sdpa" and meta["engine"]["max_batch_size"] == 32
    df = read_requests(DATA / "requests.csv")
    assert df["ok"].sum() >= 180
    ok = df[df["ok"]]
    assert (ok["generated_tokens"] == ok["output_tokens"]).all()          # output lengths were forced
    assert (ok["first_token_s"] >= ok["admitted_s"]).all() and (ok["admitted_s"] >= ok["arrival_s"] - 1e-3).all()


@needs_data
def test_replay_matches_requests_one_to_one(tmp_path: Path) -> None:
    import json

    meta = json.loads((DATA / "meta.json").read_text())
    df = read_requests(DATA / "requests.csv")
    rows = df[(df["point"] == "poisson-1.2") & (df["rep"] == 0)]
    pred, frame = predict_open(deployment(meta["engine"], "hf-paged-cudnn", gpu_for(meta)), rows, tmp_path, "replay")
    merged = rows.merge(frame, on="i", suffixes=("_m", "_p"))
    assert len(merged) == len(rows)
    assert (merged["prompt_tokens_m"] == merged["prompt_tokens_p"]).all()
    assert np.allclose(merged["arrival_s_m"] - rows["arrival_s"].min(), merged["arrival_s_p"], atol=1e-5)
    assert pred["completed"] == rows["ok"].sum()
    # conservation: every predicted request finishes after it arrives and generates all its tokens
    assert (frame["e2e_s"] > frame["ttft_s"]).all() and (frame["ttft_s"] > 0).all()


@needs_data
def test_step_model_is_compared_on_every_logged_step() -> None:
    steps = pd.read_csv(DATA / "steps.csv").head(200)
    out = step_comparison(steps, "hf-paged-cudnn", "h100-sxm")
    assert len(out) == 200 and (out["predicted_s"] > 0).all()
    assert set(out["kind"]) <= {"decode only", "with prompt chunk"}
    assert np.allclose(out["error"], (out["predicted_s"] - out["wall_s"]) / out["wall_s"])


def test_harness_cpu_run_tiny_model(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    code = harness.main(["--out", str(tmp_path), "--device", "cpu", "--tiny", "--rates", "20", "--concurrencies", "2",
                         "--requests-open", "4", "--requests-closed", "3", "--reps", "1", "--length-scale", "0.05",
                         "--profile-batches", "1", "--profile-prompt", "16", "--profile-output", "4",
                         "--deadline-s", "120"])
    assert code == 0
    df = read_requests(tmp_path / "requests.csv")
    assert len(df) == 7 and df["ok"].all()
    assert (tmp_path / "steps.csv").exists() and (tmp_path / "meta.json").exists()


def test_compare_and_profile_fit_refuse_bad_input_in_one_line(tmp_path, capsys):
    """An unknown GPU profile, or a folder the harness did not write: one line naming it, exit code 2."""
    from calibration.e2e import compare, profile_fit

    data = Path(__file__).resolve().parents[2] / "calibration" / "data" / "e2e-h200"
    for main in (compare.main, profile_fit.main):
        assert main([str(data), "--gpu", "h9000"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: gpu: got 'h9000'") and "\n" not in err
        assert main([str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: data: {tmp_path} holds no ") and "\n" not in err


def test_profile_fit_takes_no_slope_from_host_bound_batches_of_one_size(tmp_path: Path) -> None:
    """Two machines on which only batch 1 is host-bound (batches 8 and 32 have kernels over half the
    host forward): two points at one batch size fix no slope, so the rest per step is their median and
    nothing is charged per sequence (a least-squares line through them would be ill-conditioned)."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    sa = _profile(a, per_kernel=10e-6, per_step=2e-3, per_seq=1e-4, per_token=1e-6)
    sb = _profile(b, per_kernel=12e-6, per_step=2e-3, per_seq=1e-4, per_token=1e-6)
    f = fit([sa, sb], [a / "profile_kernels.csv", b / "profile_kernels.csv"], model_kernels=1200,
            copy_bytes_per_token=655360.0)
    assert f["host_bound_batches"] == 2
    assert f["cpu_overhead_per_seq_s"] == 0.0
    assert f["cpu_overhead_per_step_s"] == pytest.approx(2e-3 + 1e-4)
