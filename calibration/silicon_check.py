"""Hold servesim against measured end-to-end runs of vLLM, SGLang and TensorRT-LLM.

The measurements are the ``systems/silicon_sample.csv`` rows that the ``aiconfigurator-core``
package ships (Apache-2.0; ``pip install 'servesim[kerneldb]'`` or ``--csv PATH``): one row per
benchmark of one engine version serving one model on one GPU type at a fixed concurrency, with
fixed prompt (``isl``) and output (``osl``) lengths, and the measured mean TTFT and TPOT.
servesim is not fitted on any of them: its kernel efficiencies come from the per-kernel tables of
the same package (a different kind of measurement) and from our own GPU runs, its scheduler rules
and host figures from the engines' code and documentation.

Each row becomes a closed-loop scenario (``concurrency`` clients, each sending its next request
when the previous one ends) run as its benchmark's client ran (``--harness auto``). Rows from the
InferenceX results database (``benchmark_setup.harness_of``: most of the sample) ran its client: 10
requests per client, all timed, each prompt and output length drawn uniformly from [int(0.8 L), L]
(``benchmark_setup.INFERENCEX_RANGE_RATIO``). The other rows do not record their benchmark; they run
``--prompts`` requests (default 1000, the default ``--num-prompts`` of ``vllm bench serve`` and SGLang's
``bench_serving``; at least two per client) of exactly the row's lengths, all counted (``--warmup``
leaves each client's first request out). ``--harness`` forces one protocol on every row. The
predicted mean TTFT and TPOT (mean over requests of (E2E - TTFT) / (output - 1)) are compared with
the measured ones; offline throughput per GPU follows as concurrency x osl / (TTFT + (osl - 1) x
TPOT) per replica.

Rows are kept when servesim has the model (in its catalog, or as the Hugging Face config.json that the
package ships in ``model_configs/``: ``CONFIG_MODELS``) and GPU and the row's layout is one it models:
aggregated serving on one node (TP <= 8), no data-parallel attention (labelled, or implied by a
benchmark of TP times the row's batch of clients), pipeline 1, weights in bf16, fp8 (per-tensor or
block) or NVFP4 on a GPU with fp4 tensor cores (NVFP4 rows on Hopper run weight-only kernels, not
modelled). Rows whose experts use another format than the other weights (e.g. mxfp4) are left out,
and a measurement the sample repeats under another id (same layout, load, TTFT and TPOT) is counted
once. Each server runs with its engine's defaults (of the row's version where they changed, e.g. vLLM's
async scheduling from 0.14 on; of the profile's where the row names no release), an engine whose chunked
prefill is off (TensorRT-LLM) with a token budget of at least ``isl + concurrency`` per step, which such a
benchmark must have been launched with; ``--launch generator`` runs the settings aiconfigurator's generator
launches a benchmark with instead (``benchmark_setup.generator_launch``: the row's batch as the server's, at
most batch + isl + 1500 tokens a step, SGLang with mixed chunks), and ``--launch inferencex`` InferenceX's
launch scripts for its rows where servesim knows them (``benchmark_setup.inferencex_launch``). The KV cache
is taken in the model's dtype (the engines' ``auto`` default), since rows do not say.

Usage::

    python -m calibration.silicon_check [--csv silicon_sample.csv] [--engine vllm] [--out DIR]
        [--workers 2] [--limit N] [--prompts 1000] [--warmup] [--harness auto|inferencex|vllm-bench|aic-eval]
        [--launch defaults|generator|inferencex]
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from calibration.benchmark_setup import (HARNESSES, Benchmark, Protocol, generator_launch, harness_of,
                                        inferencex_launch, measured_on, prompt_budget, protocol)
from simulator.catalog.engines import load_engine
from simulator.catalog.gpus import load_gpu
from simulator.config.loader import scenario_from_dict
from simulator.engine.simulate import simulate
from simulator.errors import ServesimError

#: Hugging Face ids in the sample -> servesim catalog models (same architecture; FP8 checkpoints
#: are the same model with fp8 weights).
MODELS = {
    "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
    "nvidia/Llama-3.1-8B-Instruct-FP8": "llama-3.1-8b",
    "meta-llama/Llama-3.1-70B": "llama-3.1-70b",
    "Qwen/Qwen3-32B": "qwen3-32b",
    "Qwen/Qwen3-235B-A22B-FP8": "qwen3-235b-a22b",
    "openai/gpt-oss-120b": "gpt-oss-120b",
    "deepseek-ai/DeepSeek-V3": "deepseek-v3",
    "deepseek-ai/DeepSeek-R1": "deepseek-v3",
    "nvidia/DeepSeek-R1-NVFP4": "deepseek-v3",
    "nvidia/DeepSeek-V3.1-NVFP4": "deepseek-v3",
    "nvidia/Qwen3-32B-NVFP4": "qwen3-32b",
}
#: The sample's system names -> servesim GPU profiles.
GPUS = {"h100_sxm": "h100-sxm", "h200_sxm": "h200-sxm", "b200_sxm": "b200", "gb200": "gb200",
        "a100_sxm": "a100-sxm-80gb", "l40s": "l40s", "b300_sxm": "b300", "gb300": "gb300",
        "rtx_pro_6000_server": "rtx-pro-6000-server"}
#: Models not in servesim's catalog, run from the Hugging Face config.json the package ships beside the sample
#: (``model_configs/``), as a user would pass it: label and file.
CONFIG_MODELS = {"MiniMaxAI/MiniMax-M2.5": ("minimax-m2.5 (config.json)", "MiniMaxAI--MiniMax-M2.5_config.json"),
                 "moonshotai/Kimi-K2.5": ("kimi-k2.5 (config.json)", "moonshotai--Kimi-K2.5_config.json")}
#: The sample's columns this script needs (the quantisation and source columns are read where present).
SAMPLE_COLUMNS = {"id", "backend", "backend_version", "model_path", "system", "mode", "isl", "osl", "batch_size",
                  "tp_size", "pp_size", "attention_dp_size", "moe_ep_size", "silicon_ttft_ms", "silicon_tpot_ms"}
#: The sample's GEMM quantisation -> servesim weight dtype (None: not modelled).
WEIGHTS = {"fp8": "fp8", "fp8_block": "fp8", "nvfp4": "nvfp4", "int4_wo": "int4", "bfloat16": "bf16",
           "float16": "fp16"}


@dataclass(frozen=True)
class Case:
    """One measured row, as servesim will run it."""

    id: str
    engine: str
    version: str
    model: str
    gpu: str
    weight_dtype: str
    tp: int
    ep: int
    concurrency: int
    isl: int
    osl: int
    ttft_ms: float
    tpot_ms: float
    model_file: str = ""    # a config.json path where the catalog lacks the model
    harness: str = "vllm-bench"   # the benchmark that measured it, as its source names it (harness_of)
    measured: str = ""            # the day it was measured, YYYY-MM-DD, where its source says (measured_on)


@dataclass(frozen=True)
class Outcome:
    """A case's prediction (NaN where the run failed, with the reason)."""

    case: Case
    ttft_ms: float
    tpot_ms: float
    preemptions: int
    sim_s: float
    error: str = ""


def default_csv() -> Path | None:
    """The sample inside an installed ``aiconfigurator-core``, if there is one."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("aiconfigurator_core")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "systems" / "silicon_sample.csv"
    return path if path.is_file() else None


def _weight(row: pd.Series) -> str | None:
    q = row.get("gemm_quant_mode")
    if isinstance(q, str):
        return WEIGHTS.get(q)
    p = row.get("precision")
    return {"fp8": "fp8", "bf16": "bf16"}.get(p) if isinstance(p, str) else "bf16"


def _model_of(model_path: str, configs: Path | None) -> tuple[str, str] | None:
    """(label, config.json path or "") of a row's model, or None if servesim cannot run it."""
    if model_path in MODELS:
        return MODELS[model_path], ""
    if configs is not None and model_path in CONFIG_MODELS:
        label, name = CONFIG_MODELS[model_path]
        if (configs / name).is_file():
            return label, str(configs / name)
    return None


def benchmark_concurrency(r: pd.Series) -> int | None:
    """The benchmark's client count, as the row's ``silicon_data_source`` records it (None if absent)."""
    m = re.search(r"silicon_concurrency=(\d+)", str(r.get("silicon_data_source", "")))
    return int(m.group(1)) if m else None


def unlabelled_attention_dp(r: pd.Series) -> bool:
    """Whether the row ran data-parallel attention without saying so: its benchmark sent ``tp`` times
    the row's ``batch_size`` clients (the batch is per attention rank). Another multiple is read as that
    many replicas of ``batch_size`` clients each, which one replica's closed loop stands for."""
    conc = benchmark_concurrency(r)
    return conc is not None and not pd.isna(r["batch_size"]) and r["tp_size"] > 1 \
        and conc == r["tp_size"] * r["batch_size"]


def cases(table: pd.DataFrame, engines: Iterable[str] | None = None, configs: Path | None = None) -> list[Case]:
    """The rows servesim models, as cases (see the module docstring for the rule); ``configs``: the
    folder of the package's Hugging Face configs (``CONFIG_MODELS``), None to run catalog models only."""
    out: list[Case] = []
    seen: set[tuple] = set()
    want = set(engines) if engines else None
    for _, r in table.iterrows():
        model = _model_of(r["model_path"], configs)
        if r["mode"] != "agg" or model is None or r["system"] not in GPUS:
            continue
        if want is not None and r["backend"] not in want:
            continue
        if not (pd.isna(r["pp_size"]) or r["pp_size"] == 1) or r["tp_size"] > 8:   # one node
            continue
        if not (pd.isna(r["attention_dp_size"]) or r["attention_dp_size"] <= 1) or unlabelled_attention_dp(r):
            continue
        w = _weight(r)
        mq = r.get("moe_quant_mode")
        if isinstance(mq, str) and WEIGHTS.get(mq) != w:   # experts in another format (e.g. mxfp4)
            continue
        if w is None or any(pd.isna(r[k]) for k in ("batch_size", "tp_size", "silicon_ttft_ms", "silicon_tpot_ms")):
            continue
        if w == "nvfp4" and not load_gpu(GPUS[r["system"]]).has_dtype("fp4"):   # weight-only on Hopper
            continue
        source = str(r.get("silicon_data_source", ""))
        c = Case(id=str(r["id"]), engine=str(r["backend"]), version=str(r["backend_version"]),
                 model=model[0], model_file=model[1], gpu=GPUS[r["system"]], weight_dtype=w,
                 tp=int(r["tp_size"]),
                 ep=int(r["moe_ep_size"]) if not pd.isna(r["moe_ep_size"]) else 1,
                 concurrency=int(r["batch_size"]), isl=int(r["isl"]), osl=int(r["osl"]),
                 ttft_ms=float(r["silicon_ttft_ms"]), tpot_ms=float(r["silicon_tpot_ms"]),
                 harness=harness_of(source), measured=measured_on(source, str(r["id"])))
        key = measurement_key(c)
        if key not in seen:   # the sample repeats some measurements under a second id (another source file)
            seen.add(key)
            out.append(c)
    return out


def measurement_key(c: Case) -> tuple:
    """What identifies one measurement: the layout, the load and the measured values to a nanosecond (not
    the row id, the version string or the checkpoint name, which repeated rows spell differently; their
    values may differ in the last printed digit)."""
    return (c.engine, c.model, c.gpu, c.weight_dtype, c.tp, c.ep, c.concurrency, c.isl, c.osl,
            round(c.ttft_ms, 6), round(c.tpot_ms, 6))


def scenario_of(c: Case, proto: Protocol, engine: str | None = None, launch: str = "defaults") -> dict[str, Any]:
    """The closed-loop scenario of case ``c`` run as ``proto`` says (its requests, at least two per client,
    and their lengths); ``engine`` overrides the case's engine. ``launch``:
    ``generator`` (the settings aiconfigurator's generator launches the benchmark with:
    :func:`generator_launch`), ``defaults`` (the engine's server defaults, with a token budget
    that fits a prompt: :func:`prompt_budget`) or ``inferencex`` (those, then for a row of InferenceX's
    database its launch script where known: :func:`inferencex_launch`)."""
    n = max(proto.requests, 2 * c.concurrency)
    dep: dict[str, Any] = {"gpu": c.gpu, "engine": engine or c.engine, "tp": c.tp, "weight_dtype": c.weight_dtype}
    if c.ep > 1:   # experts spread over the replica's GPUs (servesim: ep = tp)
        dep["moe"] = {"expert_parallel": c.tp}
    if launch == "generator" and engine is None:
        dep.update(generator_launch(c.engine, c.version, c.concurrency, c.isl))
    else:
        dep.update(prompt_budget(dep["engine"], c.isl, c.concurrency))
    if engine is None and not load_engine(c.engine).overlaps_host_at(c.version):
        dep["overlap_host"] = False    # that version's server ran host work and GPU steps in turn
    if launch == "inferencex" and engine is None and c.harness == "inferencex":
        dep.update(inferencex_launch(Benchmark(c.engine, c.model, c.weight_dtype, c.gpu, c.tp, c.concurrency,
                                               c.isl, c.osl, c.measured)))
    return {"name": c.id, "model": c.model_file or c.model, "deployment": dep, "seed": 0,
            "workload": {"arrival": {"process": "closed_loop", "concurrency": c.concurrency}, "requests": n,
                         "prompt_tokens": lengths(c.isl, proto.range_ratio),
                         "output_tokens": lengths(c.osl, proto.range_ratio)},
            "slo": {"ttft_s": None, "tpot_s": None}}


def lengths(n: int, range_ratio: float | None) -> dict[str, Any]:
    """A length distribution: exactly ``n``, or uniform on [int(range_ratio x n), n] (at least 1)."""
    if range_ratio is None:
        return {"dist": "fixed", "value": n}
    return {"dist": "uniform", "low": max(int(n * range_ratio), 1), "high": n}


def run_case(args: tuple[Case, Protocol, str | None, str]) -> Outcome:
    """Simulate one case as its client protocol and ``launch`` say (:func:`scenario_of`); the statistics
    skip the protocol's first ``skip`` requests by arrival."""
    c, proto, engine, launch = args
    warmup = proto.skip
    try:
        res = simulate(scenario_from_dict(scenario_of(c, proto, engine, launch)))
    except ServesimError as e:
        return Outcome(c, math.nan, math.nan, 0, 0.0, str(e).splitlines()[0][:200])
    r = res.requests
    order = np.argsort(r.arrival, kind="stable")
    keep = order[warmup:]
    done = keep[r.finish[keep] > 0]
    if done.size == 0:
        why = res.notes[-1] if res.notes else "no request finished"
        return Outcome(c, math.nan, math.nan, int(r.preemptions.sum()), res.wall_time_s, f"no request finished: {why}"[:200])
    ttft = (r.first_token - r.arrival)[done]
    tpot = ((r.finish - r.first_token) / np.maximum(r.output - 1, 1))[done]
    return Outcome(c, float(np.mean(ttft)) * 1e3, float(np.mean(tpot)) * 1e3, int(r.preemptions.sum()),
                   res.wall_time_s)


def throughput_per_gpu(concurrency: int, osl: int, tp: int, ttft_ms: float, tpot_ms: float) -> float:
    """Output tokens/s per GPU of a closed loop at ``concurrency`` (Little's law over one request)."""
    e2e = (ttft_ms + (osl - 1) * tpot_ms) / 1e3
    return concurrency * osl / e2e / tp


def frame(outcomes: list[Outcome]) -> pd.DataFrame:
    """One row per case: measured, predicted and signed relative errors."""
    rows = []
    for o in outcomes:
        c = o.case
        m_thr = throughput_per_gpu(c.concurrency, c.osl, c.tp, c.ttft_ms, c.tpot_ms)
        p_thr = throughput_per_gpu(c.concurrency, c.osl, c.tp, o.ttft_ms, o.tpot_ms)
        rows.append({**asdict(c), "pred_ttft_ms": o.ttft_ms, "pred_tpot_ms": o.tpot_ms,
                     "ttft_err": o.ttft_ms / c.ttft_ms - 1, "tpot_err": o.tpot_ms / c.tpot_ms - 1,
                     "thr_meas": m_thr, "thr_pred": p_thr, "thr_err": p_thr / m_thr - 1,
                     "preemptions": o.preemptions, "sim_s": o.sim_s, "error": o.error})
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Median and worst |error| of TTFT, TPOT and throughput per engine (and all)."""
    ok = df[df["error"] == ""]
    groups = [(e, g) for e, g in ok.groupby("engine")] + [("all", ok)]
    rows = []
    for name, g in groups:
        row: dict[str, Any] = {"engine": name, "rows": len(g)}
        for k in ("ttft", "tpot", "thr"):
            a = g[f"{k}_err"].abs()
            row[f"{k}_median"] = float(a.median()) if len(a) else math.nan
            row[f"{k}_p90"] = float(a.quantile(0.9)) if len(a) else math.nan
            row[f"{k}_worst"] = float(a.max()) if len(a) else math.nan
            row[f"{k}_bias"] = float(g[f"{k}_err"].median()) if len(a) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def by_group(df: pd.DataFrame) -> pd.DataFrame:
    """Median signed and absolute errors per (engine, model, GPU, weights)."""
    ok = df[df["error"] == ""]
    g = ok.groupby(["engine", "model", "gpu", "weight_dtype"])
    return g.agg(rows=("tpot_err", "size"), ttft_bias=("ttft_err", "median"),
                 ttft_abs=("ttft_err", lambda x: x.abs().median()), tpot_bias=("tpot_err", "median"),
                 tpot_abs=("tpot_err", lambda x: x.abs().median()), thr_bias=("thr_err", "median"),
                 thr_abs=("thr_err", lambda x: x.abs().median())).reset_index()


def markdown(df: pd.DataFrame) -> str:
    """A pipe table of ``df`` (floats as percentages where the column is an error)."""
    def cell(k: str, v: Any) -> str:
        if isinstance(v, float):
            return f"{v:+.1%}" if k.endswith("bias") else (f"{v:.1%}" if "_" in k else f"{v:.3g}")
        return str(v)
    head = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(k, v) for k, v in zip(df.columns, r)) + " |" for r in df.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration.silicon_check", description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=None, help="silicon_sample.csv (default: the installed package's)")
    ap.add_argument("--engine", action="append", help="only these engines (vllm, sglang, trtllm)")
    ap.add_argument("--as-engine", default=None, help="simulate every row with this engine profile instead")
    ap.add_argument("--out", type=Path, default=None, help="folder for cases.csv and summary.json")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="every k-th case only, to at most this many")
    ap.add_argument("--prompts", type=int, default=1000, help="requests per benchmark (at least 2 per client)")
    ap.add_argument("--warmup", action="store_true", help="leave each client's first request out of the statistics")
    ap.add_argument("--launch", choices=("defaults", "generator", "inferencex"), default="defaults",
                    help="server settings: defaults (the engine's own, the default), generator (as "
                         "aiconfigurator's generator launches a benchmark) or inferencex (its launch scripts "
                         "for its rows, where known)")
    ap.add_argument("--harness", choices=["auto", *sorted(HARNESSES)], default="auto",
                    help="benchmark protocol: auto (each row's own, as its source names it: the default), "
                         "inferencex (10 per client, lengths uniform on [0.8 L, L]), vllm-bench "
                         "(--prompts requests), aic-eval (12 per client) or aic-bench (52 per client), "
                         "the last two with 2 per client of warm-up")
    a = ap.parse_args(argv)
    path = a.csv or default_csv()
    if path is None or not path.is_file():
        print("silicon_check: no silicon_sample.csv: pip install 'servesim[kerneldb]' or pass --csv", file=sys.stderr)
        return 2
    configs = path.parent.parent / "model_configs"    # beside systems/ in the package
    if not configs.is_dir() and default_csv() is not None:
        configs = default_csv().parent.parent / "model_configs"   # type: ignore[union-attr]
    table = pd.read_csv(path)
    missing = sorted(SAMPLE_COLUMNS - set(table.columns))
    if missing:
        print(f"silicon_check: {path} lacks {', '.join(missing)}: pass aiconfigurator-core's silicon_sample.csv",
              file=sys.stderr)
        return 2
    cs = cases(table, a.engine, configs)
    if a.limit and len(cs) > a.limit:
        step = len(cs) / a.limit
        cs = [cs[int(i * step)] for i in range(a.limit)]
    jobs = [(c, protocol(c.harness if a.harness == "auto" else a.harness, c.concurrency, a.prompts, a.warmup),
             a.as_engine, a.launch) for c in cs]
    if a.workers > 1:
        with ProcessPoolExecutor(a.workers) as ex:
            outs = list(ex.map(run_case, jobs, chunksize=1))
    else:
        outs = [run_case(j) for j in jobs]
    df = frame(outs)
    s = summary(df)
    pd.set_option("display.width", 200)
    print(s.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    failed = df[df["error"] != ""]
    if len(failed):
        print(f"{len(failed)} cases failed, e.g. {failed['error'].iloc[0]}")
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        df.to_csv(a.out / "cases.csv", index=False)
        (a.out / "summary.json").write_text(json.dumps(s.to_dict(orient="records"), indent=1) + "\n")
        (a.out / "summary.md").write_text(markdown(s) + "\n" + markdown(by_group(df)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
