"""servesim and aiconfigurator-core's own estimator, side by side on the same measured rows.

``calibration.silicon_check`` holds servesim against the measured end-to-end rows that
``aiconfigurator-core`` ships (``systems/silicon_sample.csv``). This script asks that package's own
aggregated-serving estimate (``run_agg`` of its engine backend: the path of its ``estimate`` command,
``mode=agg``) for the same rows and reports both tools' median |error| on the measurements that both
predict. It needs the optional extra (``pip install 'servesim[kerneldb]'``) and the ``cases.csv`` that
``silicon_check --out DIR`` writes.

How the package is asked, row by row: the row's model, GPU, engine, weight and expert formats, TP,
pipeline, attention-DP and expert layout, batch (``batch_size``, per attention rank, as the package
reads it), prompt and output lengths; KV-cache, attention and communication formats left to the
package's defaults; ``ctx_tokens = isl`` (its ``estimate`` default). The package serves only the
engine versions of its query slots (``systems/query_versions.yaml``); a row whose version is not one
of them is priced with the package's latest database for that engine and GPU, which is recorded.
Model ids whose ``config.json`` the package does not ship are read as the shipped config of the same
architecture (``ALIASES``). Its vLLM TTFT terms (a queueing factor and a per-layer dispatch overhead)
say in their comments that they were fitted on this sample; servesim is fitted on none of it.

Usage::

    python -m calibration.silicon_check --out DIR
    python -m calibration.peer_check --cases DIR/cases.csv [--out DIR] [--workers 2]
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import io
import logging
import math
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from calibration.silicon_check import default_csv, throughput_per_gpu
from simulator.tables import render, table

#: Model ids of the sample whose config.json the package does not ship -> the shipped config of the
#: same architecture (the same ids servesim reads as one catalog model, ``silicon_check.MODELS``).
ALIASES = {
    "meta-llama/Llama-3.1-70B": "meta-llama/Meta-Llama-3.1-70B",
    "meta-llama/Llama-3.1-8B-Instruct": "meta-llama/Meta-Llama-3.1-8B",
    "nvidia/Llama-3.1-8B-Instruct-FP8": "meta-llama/Meta-Llama-3.1-8B",
    "nvidia/DeepSeek-R1-NVFP4": "nvidia/DeepSeek-V3.1-NVFP4",
    "nvidia/Qwen3-32B-NVFP4": "Qwen/Qwen3-32B",
}


#: The columns of ``silicon_check``'s cases.csv this script reads.
CASE_COLUMNS = {"id", "engine", "concurrency", "osl", "tp", "ttft_ms", "tpot_ms", "ttft_err", "tpot_err", "thr_err",
                "thr_meas", "error"}


@dataclass(frozen=True)
class PeerInputs:
    """What the package's estimate is asked for one row."""

    id: str
    engine: str
    version: str
    system: str
    model_path: str
    tp: int
    pp: int
    attention_dp: int
    moe_tp: int | None
    moe_ep: int | None
    gemm: str | None
    moe: str | None
    batch: int
    isl: int
    osl: int


@dataclass(frozen=True)
class PeerOutcome:
    """The package's prediction for one row (NaN and the reason where it gave none)."""

    id: str
    peer_ttft_ms: float
    peer_tpot_ms: float
    peer_version: str
    status: str


def _count(v: Any) -> int | None:
    """A layout count of the sample (empty or 0: not set)."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return None
    return int(float(v)) or None


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def inputs_of(row: pd.Series) -> PeerInputs:
    """The package's inputs for a sample row."""
    model = str(row["model_path"])
    return PeerInputs(
        id=str(row["id"]), engine=str(row["backend"]), version=_text(row.get("backend_version")) or "",
        system=str(row["system"]), model_path=ALIASES.get(model, model), tp=_count(row["tp_size"]) or 1,
        pp=_count(row.get("pp_size")) or 1, attention_dp=_count(row.get("attention_dp_size")) or 1,
        moe_tp=_count(row.get("moe_tp_size")), moe_ep=_count(row.get("moe_ep_size")),
        gemm=_text(row.get("gemm_quant_mode")), moe=_text(row.get("moe_quant_mode")),
        batch=int(row["batch_size"]), isl=int(row["isl"]), osl=int(row["osl"]))


@functools.lru_cache(maxsize=64)
def _database(system: str, engine: str, version: str) -> tuple[Any, str]:
    """The package's kernel database for the row's engine version, else its latest one."""
    from aiconfigurator_core.sdk.perf_database import get_database_view, get_latest_database_version
    if version:
        with contextlib.suppress(Exception):   # not one of the package's query slots
            db = get_database_view(system, engine, version, database_mode="SILICON")
            if db is not None:
                return db, version
    latest = get_latest_database_version(system=system, backend=engine)
    db = get_database_view(system, engine, latest, database_mode="SILICON") if latest else None
    if db is None:
        raise LookupError(f"no database for {system}/{engine}")
    return db, f"{latest} (latest; row: {version or 'none'})"


def _estimate(p: PeerInputs) -> tuple[float, float, str]:
    """TTFT and TPOT (ms) of the package's aggregated-serving estimate, and the database version."""
    from aiconfigurator_core.sdk.backends.factory import get_backend
    from aiconfigurator_core.sdk.config import ModelConfig, RuntimeConfig
    from aiconfigurator_core.sdk.config_builders import build_model_config
    from aiconfigurator_core.sdk.models import get_model
    from aiconfigurator_core.sdk.models import helpers as h
    db, version = _database(p.system, p.engine, p.version)
    moe_tp, moe_ep = p.moe_tp, p.moe_ep
    if h.check_is_moe(p.model_path):
        moe_tp, moe_ep = ModelConfig(tp_size=p.tp, attention_dp_size=p.attention_dp, moe_tp_size=moe_tp,
                                     moe_ep_size=moe_ep).resolve_moe_parallelism()
    mc = build_model_config(p.tp, p.pp, p.attention_dp, moe_tp, moe_ep, p.gemm, None, None, p.moe, None)
    h.resolve_context_fmha_by_data(mc, p.model_path, db, p.engine, is_context_role=True)
    h.resolve_dsv4_moe_arch(mc, p.model_path, system_name=p.system, backend_name=p.engine)
    h.resolve_nvfp4_for_system(mc, p.system, p.model_path, backend_name=p.engine)
    model = get_model(p.model_path, mc, p.engine)
    rc = RuntimeConfig(isl=p.isl, osl=p.osl, batch_size=p.batch, prefix=0)
    summary = get_backend(p.engine).run_agg(model, db, rc, ctx_tokens=p.isl, max_seq_len=None,
                                            free_gpu_memory_fraction=None, decode_tokens_per_iteration=None)
    result = summary.get_result_dict()
    if result is None or summary.check_oom():
        raise MemoryError("the package finds no memory for this layout")
    return float(result["ttft"]), float(result["tpot"]), version


def _quiet() -> None:
    """A worker's start: the package logs a fallback warning for every row."""
    logging.disable(logging.WARNING)


def predict(p: PeerInputs) -> PeerOutcome:
    """The package's prediction for one row; a failure is recorded, not raised."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ttft, tpot, version = _estimate(p)
        return PeerOutcome(p.id, ttft, tpot, version, "ok")
    except Exception as e:   # the package's own refusals (missing tables, layouts it rejects)
        reason = re.sub(r"\s+", " ", str(e))[:80]
        return PeerOutcome(p.id, math.nan, math.nan, "", f"{type(e).__name__}: {reason}")


def joined(cases: pd.DataFrame, peer: pd.DataFrame) -> pd.DataFrame:
    """servesim's cases (``silicon_check`` ``cases.csv``) that both tools predicted, with the package's
    errors beside servesim's (``peer_ttft_err``, ``peer_tpot_err``, ``peer_thr_err``)."""
    ok = cases[cases["error"].fillna("") == ""]
    m = ok.merge(peer[peer["status"] == "ok"][["id", "peer_ttft_ms", "peer_tpot_ms"]], on="id")
    thr = [throughput_per_gpu(r.concurrency, r.osl, r.tp, r.peer_ttft_ms, r.peer_tpot_ms) for r in m.itertuples()]
    return m.assign(peer_ttft_err=m["peer_ttft_ms"] / m["ttft_ms"] - 1,
                    peer_tpot_err=m["peer_tpot_ms"] / m["tpot_ms"] - 1,
                    peer_thr_err=pd.Series(thr, index=m.index) / m["thr_meas"] - 1)


def side_by_side(m: pd.DataFrame) -> pd.DataFrame:
    """Median |error| of TTFT, TPOT and throughput per engine (and all): servesim, then the package."""
    rows = []
    for name, g in [*m.groupby("engine"), ("all", m)]:
        row: dict[str, Any] = {"engine": name, "rows": len(g)}
        for k in ("ttft", "tpot", "thr"):
            row[f"{k}_servesim"] = float(g[f"{k}_err"].abs().median())
            row[f"{k}_peer"] = float(g[f"peer_{k}_err"].abs().median())
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration.peer_check", description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=Path, required=True, help="cases.csv of `python -m calibration.silicon_check --out`")
    ap.add_argument("--csv", type=Path, default=None, help="silicon_sample.csv (default: the installed package's)")
    ap.add_argument("--out", type=Path, default=None, help="folder for peer.csv and joined.csv")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    path = a.csv or default_csv()
    if not a.cases.is_file():
        print(f"peer_check: --cases {a.cases} not found: run `python -m calibration.silicon_check --out DIR` first",
              file=sys.stderr)
        return 2
    if path is None or not path.is_file():
        print("peer_check: no silicon_sample.csv: pip install 'servesim[kerneldb]' or pass --csv", file=sys.stderr)
        return 2
    cases = pd.read_csv(a.cases)
    missing = sorted(CASE_COLUMNS - set(cases.columns))
    if missing:
        print(f"peer_check: --cases {a.cases} lacks {', '.join(missing)}: pass the cases.csv of silicon_check --out",
              file=sys.stderr)
        return 2
    sample = pd.read_csv(path)
    rows = sample[sample["id"].isin(cases["id"])].drop_duplicates("id")
    todo = sorted((inputs_of(r) for _, r in rows.iterrows()), key=lambda p: (p.system, p.engine, p.version))
    if not todo:
        print(f"peer_check: no row of --cases {a.cases} is in {path}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("aiconfigurator_core") is None:
        print("peer_check: aiconfigurator-core is not installed: pip install 'servesim[kerneldb]'", file=sys.stderr)
        return 2
    with ProcessPoolExecutor(max(1, a.workers), initializer=_quiet) as ex:
        peer = pd.DataFrame([asdict(o) for o in ex.map(predict, todo, chunksize=16)])
    m = joined(cases, peer)
    s = side_by_side(m)
    t = table(["engine", "rows", "TTFT servesim", "TTFT package", "TPOT servesim", "TPOT package",
               "throughput servesim", "throughput package"], title="median |error| on the same measurements")
    for r in s.itertuples():
        t.add_row(str(r.engine), str(r.rows), *(f"{v:.1%}" for v in (r.ttft_servesim, r.ttft_peer, r.tpot_servesim,
                                                                     r.tpot_peer, r.thr_servesim, r.thr_peer)))
    print(render(t))
    print(f"{len(todo) - int((peer['status'] == 'ok').sum())} of {len(todo)} rows the package does not predict; "
          f"{(peer['peer_version'].str.contains('latest')).sum()} priced with its latest database")
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        peer.to_csv(a.out / "peer.csv", index=False)
        m.to_csv(a.out / "joined.csv", index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
