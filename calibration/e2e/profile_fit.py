"""The ``hf-paged`` engine profiles' host and kernel figures, from the per-step profile alone.

Reads ``profile_steps.csv`` (plain and profiled runs of decode batches, see
:mod:`calibration.e2e.stepprofile`) and ``profile_kernels.csv``; the end-to-end latencies are not
used. Decode steps are those where all B sequences decode (no prompt chunk). Figures, for
servesim's packed-attention kernel inventory (``attention: packed``, :mod:`simulator.perf.packed`):

- host time of the forward call per kernel: median plain-run host forward time over the kernels
  the profiler saw per step (``per_launched_kernel_s``) and over the kernels servesim's step model
  counts for the same step (``cpu_launch_per_kernel_s``; the model multiplies its own count);
- ``cpu_overhead_per_step_s`` and ``cpu_overhead_per_seq_s``: intercept and slope over B of the
  rest of the step's wall time (wall - host forward: scheduling, input preparation, sampling,
  the wait for the GPU, the update), least squares over the host-bound batches (profiled kernel
  time under half the plain host forward time; with host-bound batches of one size only, their
  median rest and no slope);
- ``kv_copy_Bps``: bytes the GQA head expansion moves per context token (KV heads read, query
  heads written, K and V, all layers) over the measured growth of copy-kernel time per context
  token across the profiled decode batches;
- ``packed_attention_efficiency`` (steps with a prompt chunk) and ``..._decode`` (decode-only
  steps): servesim's attention time at efficiency 1 summed over the profiled steps of each kind,
  over the measured attention time of the same steps. Measured attention of a step = its GEMM and
  attention kernel time less servesim's GEMM time for that step (calibrated separately, within
  3-7% of the measured pure-GEMM time of the cuDNN runs), because the memory-efficient SDPA kernel
  (``fmha_cutlassF_*``) was classed as a GEMM by name in the stored H200 profile;
- ``elementwise_kernel_s``: count-weighted median duration of the small element-wise kernels at B = 1.

Printed as a diagnostic, not an engine-profile figure: the host's usual level and its slow episodes
over the host-bound batches' steps (:mod:`calibration.e2e.host_episodes`); a model of them was tried
and not kept (``docs/validation/end-to-end.md``).

``--write PATH`` writes a whole engine profile (the ``--engine`` profile with these figures and a
source naming the command) that scenarios take as ``deployment.engine: PATH``.
"""
from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .host_episodes import episodes

#: Breakdown kinds of the step model that are GEMM kernels.
GEMM_KINDS = ("qkv_proj", "o_proj", "mlp", "moe", "router", "lm_head")
#: What the step model gives for one profiled step: (attention seconds at efficiency 1, GEMM
#: seconds, whether the step counts as a chunk step).
Predict = Callable[[dict[str, str]], tuple[float, float, bool]]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _num(r: dict[str, str], k: str) -> float:
    v = r.get(k, "")
    return float(v) if v not in ("", None) else float("nan")


def _median(values: list[float]) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else float("nan")


def decode_groups(steps: list[dict[str, str]]) -> dict[tuple[str, int, str], list[dict[str, str]]]:
    """Per (run, batch, source folder): the steps decoding all B sequences (no prompt chunk), in file order."""
    groups: dict[tuple[str, int, str], list[dict[str, str]]] = {}
    for r in steps:
        b = int(float(r["batch"]))
        if int(float(r["decode_seqs"])) == b and int(float(r["prefill_seqs"])) == 0:
            groups.setdefault((r["run"], b, r.get("source", "0")), []).append(r)
    return groups


def decode_medians(steps: list[dict[str, str]]) -> dict[tuple[str, int, str], dict[str, float]]:
    """Per (run, batch, source folder): medians over the steps decoding all B sequences."""
    return group_medians(decode_groups(steps))


def group_medians(groups: dict[tuple[str, int, str], list[dict[str, str]]]
                  ) -> dict[tuple[str, int, str], dict[str, float]]:
    """Medians of each group of :func:`decode_groups` (and the 10th and 90th percentile of host forward)."""
    out: dict[tuple[str, int, str], dict[str, float]] = {}
    keys = ("wall_s", "fwd_host_s", "decode_ctx", "kernels", "kernel_s", "gemm_s", "copy_s")
    for key, g in groups.items():
        out[key] = {k: _median([_num(r, k) for r in g]) for k in keys}
        out[key]["steps"] = float(len(g))
        host = np.array([_num(r, "fwd_host_s") for r in g])
        host = host[np.isfinite(host)]
        out[key]["fwd_host_p10_s"], out[key]["fwd_host_p90_s"] = (
            (float(np.percentile(host, 10)), float(np.percentile(host, 90))) if len(host) else (np.nan, np.nan))
    return out


def _host_and_wall(group: list[dict[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """(host forward s, wall s) of a group of :func:`decode_groups`, in step order."""
    g = sorted(group, key=lambda r: int(float(r["step"])))
    return np.array([_num(r, "fwd_host_s") for r in g]), np.array([_num(r, "wall_s") for r in g])


def host_bound(kernel_s: float, fwd_host_s: float) -> bool:
    """Whether a profiled batch is host-bound: its kernels take under half the plain run's host forward
    time (no profiled twin, NaN kernels: counted host-bound)."""
    return not kernel_s > 0.5 * fwd_host_s


def batch_lines(steps: list[dict[str, str]], names: Sequence[str]) -> list[str]:
    """One line per profiled batch (``names``: the folders, by ``source``): plain-run wall and host
    forward (median, and 10th-90th percentile over its steps), profiled kernel time, and whether the
    fit counts the batch as host-bound (kernels under half the host forward), so that a machine's host
    time can be read batch by batch."""
    med = decode_medians(steps)
    out = []
    for run, b, src in sorted((k for k in med if k[0] == "plain"), key=lambda k: (k[1], int(k[2]))):
        plain, prof = med[(run, b, src)], med.get(("profiled", b, src))
        kern = prof["kernel_s"] if prof else float("nan")
        bound = "yes" if host_bound(kern, plain["fwd_host_s"]) else "no"
        out.append(f"{names[int(src)]}: batch {b}: wall {plain['wall_s'] * 1e3:.1f} ms, host forward "
                   f"{plain['fwd_host_s'] * 1e3:.1f} ms (p10-p90 {plain['fwd_host_p10_s'] * 1e3:.1f}-"
                   f"{plain['fwd_host_p90_s'] * 1e3:.1f}), kernels {kern * 1e3:.1f} ms, host-bound {bound}")
    return out


def attention_efficiencies(steps: list[dict[str, str]], predict: Predict) -> tuple[float, float]:
    """(decode, chunk) speed of the measured attention relative to ``predict`` over the profiled
    steps: ratio of summed predicted (efficiency 1) to summed measured attention seconds, where
    measured = gemm_s + attention_s - predicted GEMM seconds (see the module docstring)."""
    pred, meas = [0.0, 0.0], [0.0, 0.0]
    for r in steps:
        if r["run"] != "profiled":
            continue
        att, gemm, chunk = predict(r)
        m = _num(r, "gemm_s") + (_num(r, "attention_s") if r.get("attention_s") not in ("", None) else 0.0) - gemm
        if not np.isfinite(m):
            continue
        pred[int(chunk)] += att
        meas[int(chunk)] += m
    out = [p / m if m > 0 and p > 0 else float("nan") for p, m in zip(pred, meas)]
    return out[0], out[1]


def _pooled(paths: Path | Sequence[Path]) -> list[dict[str, str]]:
    """Rows of one CSV or of several (each row tagged with its file's position as ``source``)."""
    rows = []
    for i, p in enumerate([paths] if isinstance(paths, Path) else paths):
        rows += [{**r, "source": str(i)} for r in _rows(p)]
    return rows


def fit(steps_csv: Path | Sequence[Path], kernels_csv: Path | Sequence[Path], model_kernels: int,
        copy_bytes_per_token: float, attention: Predict | None = None) -> dict[str, float]:
    """The profile figures (seconds, bytes/s, fractions) from one per-step profile or several pooled
    (one per machine, in the same order for steps and kernels): every figure is taken over the
    batches of all of them. ``model_kernels``: kernels servesim counts for one decode step;
    ``copy_bytes_per_token``: bytes its GQA head expansion moves per context token; ``attention``:
    the step model's figures for a profiled step (:data:`Predict`; omitted: no attention figures)."""
    rows = _pooled(steps_csv)
    kern = _pooled(kernels_csv)
    groups = decode_groups(rows)
    med = group_medians(groups)
    keys = sorted(k for k in med if k[0] == "plain")          # (run, batch, source)
    plain = [med[k] for k in keys]
    profs = [med.get(("profiled", b, src)) for (_, b, src) in keys]   # the same batch under the profiler
    profiled = [p for p in profs if p]
    launched = [p["kernels"] for p in profiled]
    host = np.array([p["fwd_host_s"] for p in plain])
    host_med = float(np.median(host))
    rest = np.array([p["wall_s"] - p["fwd_host_s"] for p in plain])
    gpu = np.array([p["kernel_s"] if p else np.nan for p in profs])
    bound = [i for i in range(len(keys)) if host_bound(gpu[i], host[i])]
    bb = np.array([keys[i][1] for i in bound], dtype=float)
    if len(set(bb)) >= 2:
        slope, icpt = np.polyfit(bb, rest[bound], 1)
    else:   # host-bound batches of one size (or none): their median rest per step, nothing per sequence
        slope, icpt = 0.0, float(np.median(rest[bound] if bound else rest))   # (GPU-bound rests hold the GPU's tail)
    ctx = np.array([p["decode_ctx"] for p in profiled])
    copies = np.array([p["copy_s"] for p in profiled])
    per_token = float(np.polyfit(ctx, copies, 1)[0]) if len(ctx) >= 2 else float("nan")
    e_dec, e_chunk = attention_efficiencies(rows, attention) if attention else (float("nan"),) * 2
    host = episodes([(int(keys[i][2]), *_host_and_wall(groups[keys[i]])) for i in bound])
    return {
        **host,   # a diagnostic: the engine model keeps one host level, the median (see host_episodes.py)
        "host_forward_s": host_med,
        "kernels_launched": float(np.median(launched)) if launched else float("nan"),
        "per_launched_kernel_s": host_med / float(np.median(launched)) if launched else float("nan"),
        "cpu_launch_per_kernel_s": host_med / model_kernels,
        "cpu_overhead_per_step_s": max(0.0, float(icpt)),
        "cpu_overhead_per_seq_s": max(0.0, float(slope)),
        "kv_copy_Bps": copy_bytes_per_token / per_token if per_token > 0 else float("nan"),
        "copy_s_per_token": per_token,
        "packed_attention_efficiency": e_chunk,
        "packed_attention_efficiency_decode": e_dec,
        "elementwise_kernel_s": elementwise_median(kern),
        "host_bound_batches": float(len(bound)),
    }


def elementwise_median(kernels: list[dict[str, str]], batch: int = 1, max_s: float = 20e-6) -> float:
    """Count-weighted median duration of element-wise kernels shorter than ``max_s`` at ``batch``."""
    durs, counts = [], []
    for r in kernels:
        if int(float(r["batch"])) != batch or r["kind"] not in ("other", "copy"):
            continue
        if "elementwise" not in r["name"]:
            continue
        c = int(float(r["count"]))
        d = float(r["total_s"]) / max(c, 1)
        if d < max_s:
            durs.append(d)
            counts.append(c)
    if not durs:
        return float("nan")
    order = np.argsort(durs)
    cum = np.cumsum(np.array(counts)[order])
    return float(np.array(durs)[order][np.searchsorted(cum, cum[-1] / 2)])


def model_terms(engine: str = "hf-paged", model: str = "llama-3.1-8b", gpu: str = "h100-sxm",
                context: int = 1048) -> tuple[int, float, Predict]:
    """For ``engine``'s kernel inventory with its measured attention and copy figures set aside:
    servesim's kernels per decode step, GQA-expansion bytes per context token (all layers), and
    :data:`Predict` for a profiled step. None of these depend on the figures being fitted."""
    from simulator.catalog.engines import load_engine
    from simulator.catalog.gpus import load_gpu
    from simulator.catalog.models import load_model
    from simulator.perf.packed import chunk_weight, expansion_bytes
    from simulator.perf.step import BatchShape, StepModel

    arch = load_model(model)
    base = load_engine(engine).model_copy(update={"packed_attention_efficiency": None,
                                                 "packed_attention_efficiency_decode": None})
    sm = StepModel(arch, load_gpu(gpu), base)
    kernels = sm.price(BatchShape.decode(1, context), exact=True, detail=True).kernels
    copy_bytes = expansion_bytes(sm, 1.0) * arch.num_layers

    def attention(r: dict[str, str]) -> tuple[float, float, bool]:
        b = BatchShape(prefill_tokens=int(float(r["prefill_tokens"])), prefill_seqs=int(float(r["prefill_seqs"])),
                       prefill_pairs=float(r["prefill_pairs"]), prefill_kv=float(r["prefill_kv"]),
                       decode_seqs=int(float(r["decode_seqs"])), decode_ctx=float(r["decode_ctx"]))
        br = sm.price(b, exact=True, detail=True).breakdown
        gemm = sum(br.get(k, 0.0) for k in GEMM_KINDS)
        return br.get("attention_packed", 0.0), gemm, chunk_weight(b.tokens) >= 0.5

    return kernels, copy_bytes, attention


def main(argv: list[str] | None = None) -> int:
    """Print the figures for one measured folder, or several pooled, as the engine profile's YAML keys."""
    import argparse

    from .compare import gpu_for

    p = argparse.ArgumentParser(prog="python -m calibration.e2e.profile_fit", description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path, nargs="+", help="folder(s) written by calibration.e2e.harness (several: pooled)")
    p.add_argument("--engine", default="hf-paged", help="engine profile whose kernel inventory the figures are for")
    p.add_argument("--gpu", default=None, help="GPU profile (default: from meta.json's device name)")
    p.add_argument("--write", type=Path, default=None,
                   help="also write an engine profile YAML here (its name: the file name without .yaml)")
    a = p.parse_args(argv)
    from simulator.errors import ServesimError

    if a.write is not None and a.write.suffix not in (".yaml", ".yml"):
        print(f"error: --write: got {str(a.write)!r}; give a path ending in .yaml", file=sys.stderr)
        return 2
    for d in a.data:
        if not (d / "profile_steps.csv").is_file():
            print(f"error: data: {d} holds no profile_steps.csv; pass folders written by "
                  "calibration.e2e.harness with --profile-batches", file=sys.stderr)
            return 2
    try:
        gpus = {a.gpu or gpu_for(json.loads((d / "meta.json").read_text())) for d in a.data}
        if len(gpus) > 1:
            print(f"error: data: the folders were measured on different GPUs ({', '.join(sorted(gpus))}); "
                  "pool profiles of one GPU kind", file=sys.stderr)
            return 2
        gpu = gpus.pop()
        kernels, copy_bytes, attention = model_terms(a.engine, gpu=gpu)
    except ServesimError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    f = fit([d / "profile_steps.csv" for d in a.data], [d / "profile_kernels.csv" for d in a.data], kernels,
            copy_bytes, attention)
    print(f"# {' + '.join(map(str, a.data))} on {gpu}: servesim counts {kernels} kernels per decode step; "
          f"the profiler saw {f['kernels_launched']:.0f}; {f['host_bound_batches']:.0f} host-bound batches")
    print(f"# host forward per step {f['host_forward_s'] * 1e3:.1f} ms = {f['per_launched_kernel_s'] * 1e6:.1f} us "
          f"per launched kernel; copies grow {f['copy_s_per_token'] * 1e6:.3f} us per context token")
    for line in batch_lines(_pooled([d / "profile_steps.csv" for d in a.data]), [str(d) for d in a.data]):
        print(f"#   {line}")
    for k in FIGURES:
        print(f"{k}: {f[k]:.3g}")
    if np.isfinite(f["slow_factor"]):   # diagnostic (not an engine-profile figure): host_episodes.py
        print(f"# host levels of the host-bound batches: usual {f['host_usual_s'] * 1e3:.1f} ms per decode step, "
              f"slow {f['slow_factor']:.2f} times that for {f['slow_share']:.0%} of the time in episodes of "
              f"{f['slow_episode_s']:.2f} s on average ({f['folders_with_slow_level']:.0f} of {len(a.data)} folders "
              "show a slow level)")
    if a.write is not None:
        write_profile(a.write, a.engine, f, " ".join(["python -m calibration.e2e.profile_fit", *map(str, a.data)]))
        print(f"# wrote {a.write}: use it as deployment.engine: {a.write}")
    return 0


#: The engine-profile keys the fit measures.
FIGURES = ("cpu_overhead_per_step_s", "cpu_overhead_per_seq_s", "cpu_launch_per_kernel_s", "kv_copy_Bps",
           "packed_attention_efficiency", "packed_attention_efficiency_decode", "elementwise_kernel_s")


def write_engine_yaml(path: Path, base: str, updates: dict[str, Any], source: str) -> None:
    """Engine profile ``base`` with ``updates``, named after ``path``'s file and with ``source``,
    validated, written as YAML at ``path``."""
    import yaml

    from simulator.catalog.engine import EngineProfile
    from simulator.catalog.engines import load_engine

    prof = load_engine(base).model_dump()
    prof.update(updates, name=path.stem, source=source)
    EngineProfile.model_validate(prof)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(prof, sort_keys=False, width=100))


def write_profile(path: Path, base: str, figures: dict[str, float], command: str) -> None:
    """Write engine profile ``base`` with the measured ``figures`` (finite ones, 3 significant digits)
    as a YAML file at ``path``, named after the file, its source naming ``command`` and the date."""
    import datetime

    measured = {k: float(f"{figures[k]:.3g}") for k in FIGURES if np.isfinite(figures[k])}
    day = datetime.date.today().isoformat()
    write_engine_yaml(path, base, {**measured, "status": "calibrated"},
                      f"Host and kernel figures derived {day} by `{command}` from the per-step profile "
                      f"that calibration.e2e.harness --profile-batches measured; the rest as in {base}.")


if __name__ == "__main__":
    raise SystemExit(main())
