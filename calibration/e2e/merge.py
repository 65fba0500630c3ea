"""Merge harness calls into one measured folder: the calls of one run, and runs made on other machines.

A run too long for one device call is made as several harness calls (each writes its own folder
with ``rep`` 0), and a repeat on another machine is another such set. This appends each call's
``points.csv``, ``requests.csv`` and ``steps.csv`` rows to the destination's, as repeat ``--rep``
(request ids ``<point>-r<old>-<i>`` renamed to ``-r<rep>-``), and records every call in
``meta.json``'s ``runs`` (command, start, finish, elapsed seconds, log lines, rep). A call's
per-step profile goes to the destination's ``profile_steps.csv``/``profile_kernels.csv`` when it has
none yet, else to ``profile-rep<rep>/`` (a folder :mod:`.profile_fit` takes as it is), so that a
profile pooled from the destination keeps the figures it had.

    python -m calibration.e2e.merge DEST CALL [CALL ...] --rep N
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path
from typing import Any

#: Per-call CSVs whose rows are appended (all carry a ``rep`` column).
LOAD_FILES = ("points.csv", "requests.csv", "steps.csv")
PROFILE_FILES = ("profile_steps.csv", "profile_kernels.csv")
RUN_KEYS = ("command", "started_utc", "finished_utc", "elapsed_s", "notes")


class MergeError(ValueError):
    """A call folder or destination that cannot be merged (one line: what and why)."""


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


def _header(path: Path) -> list[str]:
    """A CSV file's column names (its first line only)."""
    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


def _renamed(row: dict[str, str], rep: int) -> dict[str, str]:
    """The row as repeat ``rep``: its rep column, and a request id's ``-r<old>-`` part."""
    out = dict(row)
    old = row["rep"]
    rid = row.get("request_id")
    if rid:
        tag = f"-r{old}-"
        if tag not in rid:
            raise MergeError(f"request_id: got {rid!r}; expected '<point>{tag}<i>' for rep {old}")
        out["request_id"] = rid.replace(tag, f"-r{rep}-", 1)
    out["rep"] = str(rep)
    return out


def _append(dest: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    new = not dest.exists()
    with open(dest, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        if new:
            w.writeheader()
        w.writerows(rows)


def _check_call(call: Path) -> dict[str, Any]:
    if not (call / "meta.json").is_file() or not (call / "points.csv").is_file():
        raise MergeError(f"call: {call} holds no meta.json and points.csv; pass folders written by "
                         "calibration.e2e.harness")
    return json.loads((call / "meta.json").read_text())


def merge(dest: Path, calls: list[Path], rep: int) -> dict[str, int]:
    """Append ``calls`` (harness output folders) to ``dest`` as repeat ``rep``; returns rows added
    per file. Refuses a point that ``dest`` already holds for this repeat."""
    if rep < 0:
        raise MergeError(f"rep: got {rep}; allowed: 0 or more")
    metas = [_check_call(c) for c in calls]        # every call checked before anything is written
    have = set()
    if (dest / "points.csv").exists():
        have = {(r["name"], int(r["rep"])) for r in _read(dest / "points.csv")[1]}
    added: dict[str, int] = {}
    for call in calls:
        for r in _read(call / "points.csv")[1]:
            if (r["name"], rep) in have:
                raise MergeError(f"rep: {dest} already holds point {r['name']!r} as rep {rep}")
            have.add((r["name"], rep))
    staged: list[tuple[str, list[str], list[dict[str, str]]]] = []   # everything checked before a write
    for call in calls:
        for name in LOAD_FILES:
            if (call / name).exists():
                fields, rows = _read(call / name)
                first = _header(dest / name) if (dest / name).exists() else next(
                    (f for n, f, _ in staged if n == name), fields)
                if first != fields:
                    raise MergeError(f"{name}: the columns of {call / name} differ from those merged before")
                staged.append((name, fields, [_renamed(r, rep) for r in rows]))
    if sum((c / PROFILE_FILES[0]).exists() for c in calls) + (dest / f"profile-rep{rep}").exists() > 1:
        raise MergeError(f"rep: one per-step profile per repeat; rep {rep} would get several")
    dest.mkdir(parents=True, exist_ok=True)
    for name, fields, rows in staged:
        _append(dest / name, fields, rows)
        added[name] = added.get(name, 0) + len(rows)
    for call, meta in zip(calls, metas):
        if (call / PROFILE_FILES[0]).exists():
            target = dest if not (dest / PROFILE_FILES[0]).exists() else dest / f"profile-rep{rep}"
            if target != dest:
                target.mkdir()
                (target / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
            for name in PROFILE_FILES:
                shutil.copyfile(call / name, target / name)
            added["profile"] = 1
        _record(dest, meta, rep)
    return added


def _record(dest: Path, meta: dict[str, Any], rep: int) -> None:
    """Add the call to ``dest``'s meta.json ``runs`` (the first call's meta becomes the folder's)."""
    path = dest / "meta.json"
    base = json.loads(path.read_text()) if path.exists() else {**meta, "runs": []}
    base.setdefault("runs", []).append({**{k: meta.get(k) for k in RUN_KEYS}, "rep": rep})
    path.write_text(json.dumps(base, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m calibration.e2e.merge", description=__doc__.split("\n")[0])
    p.add_argument("dest", type=Path, help="measured folder to append to (created if absent)")
    p.add_argument("calls", type=Path, nargs="+", help="folders written by calibration.e2e.harness, in order")
    p.add_argument("--rep", type=int, required=True, help="repeat number the calls' rows get")
    a = p.parse_args(argv)
    try:
        added = merge(a.dest, a.calls, a.rep)
    except MergeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"merged {len(a.calls)} call(s) into {a.dest} as rep {a.rep}: "
          + ", ".join(f"{k} +{v}" for k, v in added.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
