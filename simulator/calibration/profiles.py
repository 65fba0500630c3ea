"""Write fitted efficiency into ``hwprofiles/``, transfer it to unmeasured GPUs, and check it.

    servesim calibrate fit --write     # refit from calibration/data/*, rewrite the profiles' efficiency blocks
    servesim calibrate fit --check     # exit 1 if the committed profiles differ from what the fit produces

Measured GPUs (those with ``calibration/data/<gpu>/`` kernel CSVs) get ``status: calibrated``.
Transfer rule for the others: an NVIDIA data-center or workstation GPU takes the curves of the
measured NVIDIA GPU whose memory bandwidth is closest on a log scale (efficiency is a fraction of
each GPU's *own* datasheet roofline, so curves carry over between tensor-core GPUs of similar
balance; launch figures, collectives and datasheet numbers stay its own), with ``status:
transferred`` and ``transferred_from``. The prefill-attention tile model goes with the curves: its
per-CTA rate is a fraction of the receiving GPU's own peak per SM, while its SM count and fixed
per-tile and per-kernel times stay the measured GPU's. Other vendors and device kinds keep the documented defaults.
GPUs we have not measured but a kernel database has (``hwprofiles/kernels/<gpu>/vllm.yaml``, fitted by
``python -m calibration.kerneldb``): their GEMM and attention curves and tile models come from that
file, the memory-bound curves still by the transfer rule, and the status is ``calibrated``. Their fp8
(per-tensor) GEMMs take the database's *bf16* GEMM efficiency (:data:`FP8_FROM_BF16`).
The launch figures keep the GPU-side meaning the time model uses: ``launch_overhead_s`` is the
host cost of one eager launch as measured (torch dispatch included), ``graph_launch_overhead_s``
the per-kernel cost inside a CUDA-graph replay, ``min_kernel_s`` the shortest kernel.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml

from simulator.catalog.gpus import list_gpus, load_gpu
from simulator.catalog.kernels import load_kernel_profile
from simulator.catalog.nccl import load_nccl_profile
from simulator.errors import InputError
from simulator.paths import calibration_data_dir, catalog_dir, hwprofiles_dir

from .fit import fit

DATA = calibration_data_dir()
DECODE_FEATURE = "batch_kv_heads"
#: The kernel database's engine that calibrates GPUs without our own measurements: vLLM, the most
#: generic (bf16 GEMMs through torch.nn.functional.linear, i.e. cuBLAS as in our own suite; fp8 through
#: CUTLASS; FlashAttention or FlashInfer attention).
DB_ENGINE = "vllm"
#: fp8 rule for database GPUs: the fp8 GEMM curve is the bf16 GEMM curve of the same tables (efficiency
#: is a fraction of each dtype's own roofline). The database's fp8 tables time one call of the engine's
#: fp8 linear layer, activation quantisation and per-call host work included (a floor of 7-15 us over
#: its bf16 tables at the same bandwidth); on H100 and H200, where our own suite measured fp8 kernels,
#: they price them 54% / 70% too slow at the median, the bf16 curve of the same tables 7.0% / 7.1% fast
#: (`python -m calibration.kerneldb.fp8_rule`, docs/guide/calibration.md "fp8 GEMMs of database GPUs").
FP8_FROM_BF16 = ("gemm_fp8", "gemm_bf16")
#: fp4 rule for database GPUs: the profile keeps the database's NVFP4 GEMM curve, and an NVFP4 GEMM takes
#: the slower of its weights streamed at the fp8 (there: bf16) efficiency and its FLOPs at that curve's
#: efficiency (perf/roofline.py fp4_gemm_time). The bf16 efficiency alone, the rule before, is refuted
#: where no per-call floor can explain it: on B200 at M >= 4096 the NVFP4 GEMMs reach about 41% of the fp4
#: peak, the bf16 ones 68% of theirs (`python -m calibration.kerneldb.fp4_rule`).
FP4 = "gemm_fp4"


def measured_gpus() -> list[str]:
    """GPUs with kernel CSVs under calibration/data/."""
    return sorted(p.name for p in DATA.iterdir() if (p / "gemm.csv").exists()) if DATA.is_dir() else []


def _collectives_extra(gpu: str) -> dict[str, Any]:
    """Collective fits from multi-GPU runs (calibration/data/<gpu>-x*/collective_fits.json), if any;
    ``measured``: the group sizes they measured (not extrapolated)."""
    out: dict[str, Any] = {"collectives": {}, "collectives_graph": {}, "notes": [], "measured": set()}
    for path in sorted(DATA.glob(f"{gpu}-x*/collective_fits.json")):
        data = json.loads(path.read_text())
        measured = sorted({int(k) for t in ("collectives", "collectives_graph") for f in data.get(t, {}).values()
                           for k in f} - {int(k) for k in data.get("extrapolated", [])})
        out["measured"].update(measured)
        extra = ", ".join(str(k) for k in data.get("extrapolated", []))
        out["notes"].append(f"collectives for {', '.join(map(str, measured))} GPUs measured in "
                            f"calibration/data/{path.parent.name}" + (f"; for {extra} GPUs EXTRAPOLATED, not measured "
                                                                       f"(ring formulas)" if extra else ""))
        for table in ("collectives", "collectives_graph"):
            for coll, fits in data.get(table, {}).items():
                out[table].setdefault(coll, {}).update({int(k): v for k, v in fits.items()})
    return out


def fitted(gpu: str) -> dict[str, Any]:
    """The efficiency block of a measured GPU: the fit, merged over the profile's own collective defaults."""
    eff = fit(DATA / gpu, gpu, decode_feature=DECODE_FEATURE)["efficiency"]
    extra = _collectives_extra(gpu)
    own = extra["measured"] | {int(g) for t in ("collectives", "collectives_graph")   # sizes our runs measured
                               for by_g in eff.get(t, {}).values() for g in by_g}
    base = load_gpu(gpu).efficiency.model_dump(mode="json")
    for table in ("collectives", "collectives_graph"):
        merged = {c: {int(k): v for k, v in fits.items()} for c, fits in base.get(table, {}).items()}
        for source in (extra[table], eff.get(table, {})):
            for coll, fits in source.items():
                merged.setdefault(coll, {}).update({int(k): v for k, v in fits.items()})
        eff[table] = merged
    notes = extra["notes"] + [n for n in [with_nccl(gpu, eff, own)] if n]
    if notes:
        eff["source"] = f"{eff['source']}; " + "; ".join(notes)
    return eff


def with_nccl(gpu: str, eff: dict[str, Any], own: set[int]) -> str | None:
    """Put the kernel database's NCCL fits of ``gpu`` (hwprofiles/nccl/<gpu>.yaml) into the eager
    ``collectives`` of ``eff``, for the group sizes our own runs did not measure (``own``); returns the
    note for the profile's source, or None if the database has none."""
    n = load_nccl_profile(gpu)
    if n is None:
        return None
    sizes: set[int] = set()
    table = eff.setdefault("collectives", {})
    for coll, by_g in n.collectives.items():
        for g, model in by_g.items():
            if g not in own:
                fits = model if isinstance(model, list) else [model]
                table.setdefault(coll, {})[g] = [f.model_dump(mode="json") for f in fits]
                sizes.add(g)
    if not sizes:
        return None
    t = n.provenance.tables[0]
    return (f"eager collectives ({', '.join(sorted(n.collectives))}) for {', '.join(map(str, sorted(sizes)))} GPUs, "
            f"in place of any default or extrapolation, "
            f"from the {n.provenance.package} {n.provenance.package_version} kernel database's NCCL {n.version} table "
            f"({t.path}; hwprofiles/nccl/{gpu}.yaml, calibration/kerneldb/nccl.py)")


def transfer_source(gpu: str, measured: list[str]) -> str | None:
    """The measured GPU whose curves ``gpu`` takes under the transfer rule, or None."""
    g = load_gpu(gpu)
    if g.kind != "gpu" or g.vendor.lower() != "nvidia" or not measured:
        return None
    bw = g.memory_bandwidth
    return min(measured, key=lambda m: abs(math.log(load_gpu(m).memory_bandwidth / bw)))


def efficiency_blocks() -> dict[str, dict[str, Any]]:
    """Efficiency block for every profile that calibration changes (measured or transferred)."""
    measured = measured_gpus()
    blocks = {g: fitted(g) for g in measured}
    for g in list_gpus():
        if g in blocks:
            continue
        src = transfer_source(g, measured)
        if src is None:
            continue
        own = load_gpu(g).efficiency.model_dump(mode="json")
        own.update(status="transferred", transferred_from=src, curves=blocks[src]["curves"],
                   attention_prefill_tiles=blocks[src].get("attention_prefill_tiles"),
                   attention_decode_tiles=blocks[src].get("attention_decode_tiles"),
                   source=f"curves transferred from {src} (calibration/profiles.py transfer rule); "
                          f"launch figures and collectives are this profile's documented defaults")
        own.pop("collectives_graph", None) if not own.get("collectives_graph") else None
        blocks[g] = database_block(g, own) or own
    return blocks


def database_block(gpu: str, transferred: dict[str, Any]) -> dict[str, Any] | None:
    """``transferred`` with the GEMM and attention models of the GPU's kernel-database overlay, or None."""
    k = load_kernel_profile(gpu, DB_ENGINE)
    if k is None:
        return None
    eff = dict(transferred)
    eff["curves"] = {**transferred["curves"], **{n: c.model_dump(mode="json") for n, c in k.efficiency.curves.items()}}
    fp8, bf16 = FP8_FROM_BF16
    measured_fp8 = fp8 in k.efficiency.curves     # GPUs with fp8 tensor cores; others keep the transfer
    if measured_fp8:
        eff["curves"][fp8] = k.efficiency.curves[bf16].model_dump(mode="json")
    if FP4 in k.efficiency.curves:   # GPUs with fp4 tensor cores: the database's NVFP4 GEMM curve
        eff["curves"][FP4] = k.efficiency.curves[FP4].model_dump(mode="json")
    for key in ("attention_prefill_tiles", "attention_decode_tiles"):
        if key in k.efficiency.model_fields_set:
            model = getattr(k.efficiency, key)
            eff[key] = model.model_dump(mode="json") if model is not None else None
    # the overlay's MLA decode and fused-MoE tables are the engine's own kernel families, not the GPU's
    tables = ", ".join(t.path for t in k.provenance.tables if t.path.split("/")[3] not in ("mla", "moe"))
    eff.update(status="calibrated", source=(
        f"GEMM and attention fitted from the {k.provenance.package} {k.provenance.package_version} kernel database, "
        f"{k.engine} {k.version} tables ({tables}; hwprofiles/kernels/{gpu}/{k.engine}.yaml, calibration/kerneldb)"
        + ("; fp8 GEMMs at the bf16 GEMM efficiency (calibration/profiles.py FP8_FROM_BF16)" if measured_fp8 else "")
        + ("; NVFP4 GEMMs on the database's NVFP4 GEMM curve (calibration/profiles.py FP4)" if FP4 in eff["curves"] else "")
        + "; " +
        f"memory-bound curves transferred from {transferred['transferred_from']} (transfer rule)"))
    eff["collectives"] = {c: {int(g): f for g, f in by_g.items()} for c, by_g in eff.get("collectives", {}).items()}
    nccl = with_nccl(gpu, eff, set())
    eff["source"] += (f"; {nccl}; launch figures and CUDA-graph collectives are this profile's documented defaults"
                      if nccl else "; launch figures and collectives are this profile's documented defaults")
    return eff


def _block_yaml(eff: dict[str, Any]) -> str:
    # set only at run time: the engine overlay's label and kernel families (catalog/kernels.apply_kernels)
    eff = {k: v for k, v in eff.items() if not (k == "kernel_overlay" and v is None) and not (k == "kernels" and not v)}
    body = yaml.safe_dump({"efficiency": eff}, sort_keys=False, default_flow_style=None, width=120)
    return ("# efficiency: written by `servesim calibrate fit --write` (calibration/profiles.py); do not edit by hand\n"
            + body)


def rendered(path: Path, eff: dict[str, Any]) -> str:
    """The profile's text with its efficiency block replaced (everything above it kept verbatim)."""
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    cut = next(i for i, ln in enumerate(lines) if ln.startswith("efficiency:"))
    while cut > 0 and lines[cut - 1].startswith("# efficiency: written by"):
        cut -= 1
    return "".join(lines[:cut]) + _block_yaml(eff)


ENGINE_FILE = catalog_dir("engines") / "hf-eager.yaml"


def rendered_engine(text: str) -> str:
    """hf-eager.yaml with its measured fields (calibration/engine_fit.py) set and status calibrated."""
    from .engine_fit import fitted_hf_eager

    fields = {k: v for k, v in fitted_hf_eager().items() if not k.startswith("_")}
    fields["status"] = "calibrated"
    lines = text.splitlines(keepends=True)
    for key, value in fields.items():
        line = f"{key}: {value}\n"
        idx = [i for i, ln in enumerate(lines) if ln.startswith(f"{key}:")]
        if idx:
            lines[idx[0]] = line
        else:
            lines.append(line)
    return "".join(lines)


def _path(gpu: str) -> Path:
    return hwprofiles_dir() / f"{gpu}.yaml"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="servesim calibrate fit", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the efficiency blocks in hwprofiles/")
    mode.add_argument("--check", action="store_true", help="fail if hwprofiles/ differ from the fit")
    a = ap.parse_args(argv)
    if not DATA.is_dir():
        raise InputError("calibrate fit", "--write" if a.write else "--check",
                         f"a servesim checkout (the measurements in {DATA} are not installed with the package)")
    stale = []
    for gpu, eff in efficiency_blocks().items():
        path = _path(gpu)
        new = rendered(path, eff)
        if path.read_text() != new:
            stale.append(gpu)
            if a.write:
                path.write_text(new)
    if ENGINE_FILE.exists():
        old = ENGINE_FILE.read_text()
        new = rendered_engine(old)
        if new != old:
            stale.append("engine hf-eager")
            if a.write:
                ENGINE_FILE.write_text(new)
    if a.write:
        print(f"rewrote {len(stale)} profile(s): {', '.join(stale) or 'none'}")
        return 0
    if stale:
        print(f"profiles differ from the calibration fit: {', '.join(stale)}; run `servesim calibrate fit --write`",
              file=sys.stderr)
        return 1
    print("profiles match the calibration fit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
