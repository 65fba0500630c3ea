"""Merging harness calls (calibration/e2e/merge.py) and comparing chosen repeats: rows are conserved
and renamed, a second per-step profile is kept apart, and bad merges change nothing."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from calibration.e2e.harness import KERNEL_FIELDS, POINT_FIELDS, PROFILE_FIELDS, REQUEST_FIELDS, STEP_FIELDS
from calibration.e2e.merge import MergeError, main, merge


def _write(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def call(root: Path, name: str, point: str, requests: int, profile: bool = False) -> Path:
    """A folder as one harness call writes it: one point of ``requests`` requests, repeat 0."""
    d = root / name
    d.mkdir()
    (d / "meta.json").write_text(json.dumps({"command": f"harness {name}", "started_utc": "2026-12-03T10:00:00Z",
                                             "finished_utc": "2026-12-03T10:05:00Z", "elapsed_s": 300.0,
                                             "notes": [f"{point} done"], "engine": {"block_size": 64}}))
    _write(d / "points.csv", POINT_FIELDS, [{"name": point, "kind": "poisson", "requests": requests, "rep": 0}])
    _write(d / "requests.csv", REQUEST_FIELDS,
           [{"point": point, "rep": 0, "i": i, "request_id": f"{point}-r0-{i}"} for i in range(requests)])
    _write(d / "steps.csv", STEP_FIELDS, [{"point": point, "rep": 0, "step": s} for s in range(2 * requests)])
    if profile:
        _write(d / "profile_steps.csv", PROFILE_FIELDS, [{"run": "plain", "batch": 1, "step": 0}])
        _write(d / "profile_kernels.csv", KERNEL_FIELDS, [{"batch": 1, "kind": "gemm", "name": name}])
    return d


def test_calls_of_two_runs_merge_with_every_row_once_and_renamed(tmp_path: Path) -> None:
    dest = tmp_path / "merged"
    a, b = call(tmp_path, "a", "closed-4", 3, profile=True), call(tmp_path, "b", "poisson-0.4", 5)
    assert merge(dest, [a, b], 0) == {"points.csv": 2, "requests.csv": 8, "steps.csv": 16, "profile": 1}
    a2, b2 = call(tmp_path, "a2", "closed-4", 3, profile=True), call(tmp_path, "b2", "poisson-0.4", 5)
    assert main([str(dest), str(a2), str(b2), "--rep", "2"]) == 0
    req = _rows(dest / "requests.csv")
    assert len(req) == 16 and len({r["request_id"] for r in req}) == 16
    assert {r["request_id"] for r in req if r["rep"] == "2"} == (
        {f"closed-4-r2-{i}" for i in range(3)} | {f"poisson-0.4-r2-{i}" for i in range(5)})
    assert sorted((r["name"], r["rep"]) for r in _rows(dest / "points.csv")) == [
        ("closed-4", "0"), ("closed-4", "2"), ("poisson-0.4", "0"), ("poisson-0.4", "2")]
    assert [r["rep"] for r in _rows(dest / "steps.csv")].count("2") == 16
    # the first profile stays the folder's; the second repeat's is kept apart, with its call's meta
    assert _rows(dest / "profile_kernels.csv")[0]["name"] == "a"
    assert _rows(dest / "profile-rep2" / "profile_kernels.csv")[0]["name"] == "a2"
    assert json.loads((dest / "profile-rep2" / "meta.json").read_text())["command"] == "harness a2"
    meta = json.loads((dest / "meta.json").read_text())
    assert [(r["command"], r["rep"]) for r in meta["runs"]] == [
        ("harness a", 0), ("harness b", 0), ("harness a2", 2), ("harness b2", 2)]
    assert meta["engine"] == {"block_size": 64}


def test_a_bad_merge_is_refused_whole_and_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dest = tmp_path / "merged"
    merge(dest, [call(tmp_path, "a", "closed-4", 2)], 1)
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    again = call(tmp_path, "b", "closed-4", 2)
    with pytest.raises(MergeError, match="already holds point 'closed-4' as rep 1"):
        merge(dest, [call(tmp_path, "c", "poisson-0.8", 2), again], 1)
    bad = call(tmp_path, "d", "poisson-1.6", 2)
    _write(bad / "requests.csv", REQUEST_FIELDS, [{"point": "poisson-1.6", "rep": 0, "i": 0, "request_id": "x-7"}])
    assert main([str(dest), str(bad), "--rep", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: request_id: got 'x-7'") and "\n" not in err
    assert main([str(dest), str(tmp_path / "nothing"), "--rep", "3"]) == 2
    assert "holds no meta.json" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before


def test_compare_refuses_a_repeat_the_folder_lacks(capsys: pytest.CaptureFixture) -> None:
    from calibration.e2e import compare

    data = Path(__file__).resolve().parents[2] / "calibration" / "data" / "e2e-h200"
    if not (data / "points.csv").exists():
        pytest.skip("no committed H200 run")
    assert compare.main([str(data), "--reps", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: reps: got 7;") and "holds repeats 0, 1" in err and "\n" not in err
    assert compare.main([str(data), "--reps", "one"]) == 2
    assert capsys.readouterr().err.startswith("error: --reps: got 'one'")


def test_a_refused_merge_into_a_new_folder_creates_nothing(tmp_path: Path) -> None:
    bad = call(tmp_path, "a", "closed-4", 2)
    _write(bad / "requests.csv", REQUEST_FIELDS, [{"point": "closed-4", "rep": 0, "i": 0, "request_id": "no-tag"}])
    with pytest.raises(MergeError, match="request_id"):
        merge(tmp_path / "new", [bad], 0)
    with pytest.raises(MergeError, match="rep: got -1"):
        merge(tmp_path / "new", [call(tmp_path, "b", "closed-16", 2)], -1)
    assert not (tmp_path / "new").exists()
